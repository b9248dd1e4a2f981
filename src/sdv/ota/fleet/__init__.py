"""Pulling updates: the agent polls a fleet server (Eclipse hawkBit's DDI API, or a signed index on a plain
HTTP(S) server) and downloads bundles into its transfer with HTTP Range requests, resumably.

The package drives the agent only through the steps it is handed (:class:`~sdv.ota.fleet.updater.Updater`),
never importing the agent at run time.
"""
