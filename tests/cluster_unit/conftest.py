from tests.cluster_unit.etcd_node import cluster_name, etcd_node  # noqa: F401 (fixtures)
