"""The designs the project is measured against; both speak the project's text protocol and
store nothing (no database): each keeps only the last `REPLAY` messages of a room in memory so
that the join workload has a replay to receive."""

REPLAY = 50
