"""The benchmark harness behind ``invoke bench``: kept outside ``ops`` (the library returns data and never prints)."""
