"""`python -m smartsync.sample`: the documented way to write the sample school (see `roster/sample.py`)."""

from smartsync.roster.sample import main

if __name__ == "__main__":
    raise SystemExit(main())
