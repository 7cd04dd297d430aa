"""SQLAlchemy models. Importing this package registers every table in the shared metadata."""

from app.db.models.access import AccessEvent, AuthSession, Site, User, user_sites
from app.db.models.catalog import Destination, Location, Product, ProductBarcode
from app.db.models.dispatch import DispatchRun, DispatchRunLine, PickList, PickTask, Shipment, ShipmentLine
from app.db.models.imports import ImportBatch
from app.db.models.jobs import JobPing, JobRequest, WorkerHeartbeat
from app.db.models.orders import DispatchOrder, DispatchOrderLine
from app.db.models.stock import IdempotencyKey, Lot, StockBalance, StockMovement

__all__ = [
    "AccessEvent",
    "AuthSession",
    "Destination",
    "DispatchOrder",
    "DispatchOrderLine",
    "DispatchRun",
    "DispatchRunLine",
    "IdempotencyKey",
    "ImportBatch",
    "JobPing",
    "JobRequest",
    "Location",
    "Lot",
    "PickList",
    "PickTask",
    "Product",
    "ProductBarcode",
    "Shipment",
    "ShipmentLine",
    "Site",
    "StockBalance",
    "StockMovement",
    "User",
    "WorkerHeartbeat",
    "user_sites",
]
