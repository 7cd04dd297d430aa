"""Products and locations are upserted by their natural keys: saving twice changes nothing."""

import pytest
from sqlalchemy import select

from app.db.models import ProductBarcode
from app.services.catalog import LocationData, ProductData, check_product, save_location, save_product
from app.services.errors import Invalid

WATER = ProductData("SKU-W", "Eau  minérale 1,5 L", pack_size=6, gtins=("3760000000017",))


async def test_a_product_is_created_then_unchanged_then_updated(db):
    assert (await save_product(db, WATER)).created == 1
    assert (await save_product(db, WATER)).unchanged == 1
    renamed = ProductData("SKU-W", "Eau minérale 1,5 L x6", pack_size=6, gtins=("3760000000017",))
    assert (await save_product(db, renamed)).updated == 1


async def test_barcodes_follow_the_product_and_are_stored_as_gtin_14(db):
    await save_product(db, WATER)
    await save_product(db, ProductData("SKU-W", "Eau", pack_size=6, gtins=("03760000000024",)))
    async with db.sessions() as s:
        codes = (await s.scalars(select(ProductBarcode.code))).all()
    assert codes == ["03760000000024"]


async def test_a_gtin_cannot_belong_to_two_products(db):
    await save_product(db, WATER)
    with pytest.raises(Invalid, match="already belongs"):
        await save_product(db, ProductData("SKU-X", "Autre", gtins=("3760000000017",)))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ProductData("bad sku!", "X"), "sku"),
        (ProductData("SKU-1", "   "), "name"),
        (ProductData("SKU-1", "X", pack_size=0), "pack_size"),
        (ProductData("SKU-1", "X", expiry_tracked=True), "expiry_tracked"),
        (ProductData("SKU-1", "X", gtins=("3760000000018",)), "gtins"),
    ],
)
def test_bad_products_are_refused_naming_the_field(data, field):
    with pytest.raises(Invalid) as refused:
        check_product(data)
    assert refused.value.field == field


async def test_locations_are_upserted_per_site_with_a_default_barcode(db):
    counts = await save_location(db, LocationData("lys", "a-02-01", pick_seq=5))
    assert counts.created == 1
    assert (await save_location(db, LocationData("LYS", "A-02-01", pick_seq=5))).unchanged == 1
    assert (await save_location(db, LocationData("LYS", "A-02-01", pick_seq=6))).updated == 1
    with pytest.raises(Invalid, match="Unknown site"):
        await save_location(db, LocationData("NOPE", "A-01-01"))
