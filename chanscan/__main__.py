from chanscan.cli import main

# Guarded: ``--dask local`` starts worker processes that import this module again.
if __name__ == "__main__":
    raise SystemExit(main())
