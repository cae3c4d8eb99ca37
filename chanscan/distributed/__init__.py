"""Scans sent to a Dask distributed cluster (``chanscan scan --dask ...``).

The plain install does not need Dask: nothing in this package imports ``dask`` or
``distributed`` at module level except :mod:`chanscan.distributed.runner`, which
``commands`` imports only when ``--dask`` is given.

    shards   pure: the ``--dask`` address, shards (one group/site, whole hosts), rows
             for shards nobody ran, decoding what workers send back, the progress line
    worker   the task a Dask worker runs: the ordinary trio scan of one shard
    runner   the client side: connect (TLS, loopback guard), submit with site
             resources, collect, retry, cancel on Ctrl-C

Only measurement is distributed. Rules, pins, grading, waivers, the gate and the reports
run once, centrally, on the rows the workers return, exactly as after a local scan.
"""
