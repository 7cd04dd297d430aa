"""SQLAlchemy models. Importing this package registers every table in the shared metadata."""

from app.db.models.access import AccessEvent, AuthSession, Site, User, user_sites
from app.db.models.catalog import Destination, Location, Product, ProductBarcode
from app.db.models.jobs import JobPing, JobRequest, WorkerHeartbeat
from app.db.models.orders import DispatchOrder, DispatchOrderLine

__all__ = [
    "AccessEvent",
    "AuthSession",
    "Destination",
    "DispatchOrder",
    "DispatchOrderLine",
    "JobPing",
    "JobRequest",
    "Location",
    "Product",
    "ProductBarcode",
    "Site",
    "User",
    "WorkerHeartbeat",
    "user_sites",
]
