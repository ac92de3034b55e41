"""Every write of the attribution app: intake, processing, recovery, networks and offers."""
