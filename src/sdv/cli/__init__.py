"""The ``sdv`` command line: one module per command group, each registering its sub-commands."""
