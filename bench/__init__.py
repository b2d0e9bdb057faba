"""The benchmark harness behind ``invoke bench``, kept outside ``ops`` (the library returns data and never prints).

Start at ``bench.harness``: its docstring maps the modules.
"""
