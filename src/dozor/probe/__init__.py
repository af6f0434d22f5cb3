"""The remote probe: the check engine run in another place, reporting to a server."""
