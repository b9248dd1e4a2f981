"""Tests of the ``sdv`` command line as a user runs it: real processes, real servers."""
