"""The composition roots: where the authorization server, the demo and the gateway meet.

Every other package knows only the layers below it (``tests/unit/test_import_rules.py``
keeps it so): the core knows no storage backend, the server no demo, the gateway no
authorization server. The apps that run several of them in one process are put together
here, and only the command line imports this package.
"""
