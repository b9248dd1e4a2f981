"""The bottom layer: plain types every package may use — values and datatypes, signal statuses, datapoints and
signal metadata. It imports nothing of the project but :mod:`sdv.errors`, so apps that only talk to a server
(:mod:`sdv.client`, :mod:`sdv.sdk`) need no CAN stack, DBC or YAML library."""
