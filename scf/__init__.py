"""``scf``: the ledger's command line (:mod:`scf.cli`) and the demo client that drives the running service over
HTTP (:mod:`scf.demo`). It sits above the runtime (``ledger``, ``api``) and the tooling, and may use them all;
nothing in the runtime imports from here."""
