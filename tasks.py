"""What invoke loads: the namespaces of ``cli/``, assembled. Every task lives in the module its namespace names."""

from __future__ import annotations

from invoke import Collection

from cli import bench, cognito, db, ddb, infra, local, quickstart, rds

ns = Collection(infra.ns, local.ns, db.ns, cognito.ns, rds.ns, ddb.ns, quickstart.quickstart, bench.bench)
