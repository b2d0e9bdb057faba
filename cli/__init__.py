"""The command line: one module per invoke namespace (``cli/ddb/patterns.py`` is ``ddb.patterns.*``).

Tasks are thin shells over ``ops``: resolve the target, build a client, call one ``ops``
function, render its result. ``tasks.py`` assembles the namespaces; ``cli/shell.py`` holds
the one error boundary and the flag help texts every module shares.
"""
