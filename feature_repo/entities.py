"""The things our features describe."""

from granero import Entity

driver = Entity(
    join_keys={"driver_id": "int64"},
    description="A driver on the platform.",
    owner="marketplace@rides.example",
    tags={"domain": "supply"},
)

customer = Entity(
    join_keys={"customer_id": "int64"},
    description="A rider who books trips.",
    owner="growth@rides.example",
    tags={"domain": "demand"},
)

route = Entity(
    join_keys={"pickup_zone": "int32", "dropoff_zone": "int32"},
    description="A pickup zone -> drop-off zone pair (composite key).",
    owner="pricing@rides.example",
    tags={"domain": "pricing"},
)
