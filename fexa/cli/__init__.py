"""The ``fexa`` command line."""
