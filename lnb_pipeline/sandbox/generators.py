"""Generated scenarios: ``demo`` (a small brand carrying every case the business rules are about)
and ``scale:N`` (a large clean catalogue with a sprinkle of anomalies, to measure the pipeline).

Both are deterministic: each uses its own seeded ``random.Random`` and fixed timestamps counted
from 2026-01-01, so a test, a benchmark and a bug report all see the same data. The ``lnb`` part
holds objects exactly as Le New Black's API returns them: every documented field, null when unknown.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import product as cartesian_product
from typing import Any, NamedTuple

from lnb_pipeline.sandbox.lnb.api import ORDER_STATUSES
from lnb_pipeline.sandbox.scenario import DEFAULT_SCOPES

DEMO_SEED = 20260101
SCALE_SEED = 20260102
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
RETAILER_REFERENCE_METAFIELD = "lenewblack.retailer_reference"
METAFIELD_DEFINITIONS = (  # custom ids: what customerByIdentifier / orderByIdentifier look up by
    {"owner_type": "CUSTOMER", "namespace": "lenewblack", "key": "retailer_reference", "type": "id",
     "name": "LNB retailer reference"},
    {"owner_type": "ORDER", "namespace": "lenewblack", "key": "order_reference", "type": "id",
     "name": "LNB order reference"},
)
SECONDARY_QUANTITY_NAMES = ("committed", "reserved", "damaged", "safety_stock", "quality_control", "incoming")

COLLECTION_NAME = "SS26"
WHOLESALE_MARKUP = 2.2  # retail price / wholesale price
VAT_RATE = 0.2
USD_PER_EUR = 1.1
DELIVERY_START_ON = "2026-02-15"
DELIVERY_END_ON = "2026-03-31"
INVENTORY_UPDATE_TIME = "2026-01-01T06:00:00Z"
SALES_REP_EMAIL = "sales@brand.example"
CONFIRMED_LIKE_STATUSES = ("confirmed", "invoicing", "closed")
OTHER_ORDER_STATUSES = ("draft", "open_for_buyer", "open_for_brand", "invoicing", "closed", "canceled")

# Scale anomalies: one variant in SCALE_ANOMALY_INTERVAL (0.5 %), the kinds taken in turn.
SCALE_ANOMALY_INTERVAL = 200
SCALE_ANOMALY_OFFSET = 100  # mid-interval, so a duplicate can copy the variant just before it
SCALE_ANOMALY_KINDS = (
    "missing_barcode",
    "invalid_ean13",
    "duplicate_barcode",
    "missing_sku",
    "duplicate_sku",
    "negative_available",
    "untracked",
)
SCALE_VARIANTS_PER_PRODUCT = 8
SCALE_INVENTORY_SKIP_INTERVAL = 100  # one valid barcode in 100 is left out of LNB's inventory
SCALE_ITEMS_PER_ORDER = 5

COLOURS = (
    ("Blue", "BLU"), ("Black", "BLK"), ("White", "WHT"), ("Navy", "NAV"), ("Red", "RED"),
    ("Green", "GRN"), ("Beige", "BEI"), ("Grey", "GRY"), ("Pink", "PNK"), ("Olive", "OLV"),
    ("Camel", "CML"), ("Ecru", "ECR"), ("Burgundy", "BUR"),
)
TOP_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
WAIST_SIZES = ("26", "28", "30", "32", "34", "36")
EU_SIZES = ("36", "38", "40", "42", "44", "46")
ONE_SIZE = ("One size",)
GARMENTS = (  # (name, sizes, base retail price in EUR)
    ("Shirt", TOP_SIZES, 59), ("Tee", TOP_SIZES, 29), ("Sweater", TOP_SIZES, 89),
    ("Cardigan", TOP_SIZES, 99), ("Dress", EU_SIZES, 119), ("Skirt", EU_SIZES, 69),
    ("Trousers", EU_SIZES, 89), ("Jeans", WAIST_SIZES, 99), ("Jacket", TOP_SIZES, 149),
    ("Coat", TOP_SIZES, 229), ("Blazer", EU_SIZES, 189), ("Scarf", ONE_SIZE, 39),
    ("Hoodie", TOP_SIZES, 79), ("Shorts", WAIST_SIZES, 49),
)
FABRICS = (
    "Linen", "Cotton", "Wool", "Silk", "Denim", "Cashmere", "Velvet", "Corduroy",
    "Organic Cotton", "Merino", "Tweed", "Poplin",
)
DIALLING_CODES = {
    "FR": "+33", "NL": "+31", "BE": "+32", "DE": "+49", "IT": "+39", "ES": "+34", "DK": "+45",
    "SE": "+46", "GB": "+44", "US": "+1", "CH": "+41", "PT": "+351", "AT": "+43", "IE": "+353",
}
ORDER_COMMENTS = (
    None,
    "Please deliver before the shop window change.",
    "Livraison le matin uniquement, merci.",
    "Split delivery accepted.",
    None,
    "Graag levering via de achteringang.",
)


class RetailerProfile(NamedTuple):
    """Who a retailer is in the real world: enough to fill LNB's retailer and address objects."""

    name: str
    street: str
    zipcode: str
    city: str
    country: str
    buyer_first_name: str
    buyer_last_name: str


DEMO_RETAILERS_MATCHED = (  # references R1001.. matching a Shopify customer; the first 3 also a company
    RetailerProfile("Boutique Lumière", "12 rue de Bretagne", "75003", "Paris", "FR", "Claire", "Martin"),
    RetailerProfile("Concept Store Noord", "Haarlemmerstraat 45", "1013 EK", "Amsterdam", "NL",
                    "Sanne", "de Vries"),
    RetailerProfile("Atelier Dansaert", "Rue Antoine Dansaert 22", "1000", "Brussels", "BE",
                    "Lucas", "Peeters"),
    RetailerProfile("Kaufhaus Mitte", "Torstraße 110", "10119", "Berlin", "DE", "Jonas", "Becker"),
    RetailerProfile("Bottega Solferino", "Via Solferino 8", "20121", "Milan", "IT", "Giulia", "Rossi"),
    RetailerProfile("Tienda Malasaña", "Calle de Fuencarral 70", "28004", "Madrid", "ES",
                    "Lucía", "García"),
    RetailerProfile("Nordic Threads", "Købmagergade 19", "1150", "Copenhagen", "DK", "Freja", "Nielsen"),
    RetailerProfile("Stockholm Edit", "Biblioteksgatan 5", "111 46", "Stockholm", "SE", "Elsa", "Lindqvist"),
    RetailerProfile("Marylebone Goods", "61 Marylebone High Street", "W1U 5HZ", "London", "GB",
                    "Oliver", "Hughes"),
    RetailerProfile("Le Comptoir Lyonnais", "14 rue Mercière", "69002", "Lyon", "FR", "Camille", "Bernard"),
    RetailerProfile("Utrecht Uniform", "Oudegracht 150", "3511 AZ", "Utrecht", "NL", "Daan", "Jansen"),
    RetailerProfile("Brooklyn Loft", "210 Bedford Avenue", "11249", "New York", "US", "Maya", "Cohen"),
)
DEMO_RETAILER_COMPANY_ONLY = RetailerProfile(
    "Zürich Atelier", "Rennweg 35", "8001", "Zurich", "CH", "Noah", "Keller")
DEMO_RETAILERS_WITHOUT_REFERENCE = (  # references: null, empty, whitespace
    RetailerProfile("Pop-up Marais", "5 rue des Rosiers", "75004", "Paris", "FR", "Inès", "Lefèvre"),
    RetailerProfile("Gent Vintage", "Veldstraat 80", "9000", "Ghent", "BE", "Emma", "Claes"),
    RetailerProfile("Porto Linho", "Rua das Flores 120", "4050-265", "Porto", "PT", "Beatriz", "Sousa"),
)
DEMO_RETAILERS_UNMATCHED = (  # references R9001.. that no Shopify customer or company carries
    RetailerProfile("Wiener Mode", "Neubaugasse 12", "1070", "Vienna", "AT", "Lena", "Huber"),
    RetailerProfile("Dublin Drapers", "20 Drury Street", "D02 W017", "Dublin", "IE", "Aoife", "Byrne"),
)
DEMO_RETIRED_ARTICLES = (  # in LNB's catalogue and inventory, no longer in Shopify: (title, style, sku)
    ("Velvet Blazer FW24", "RETIRED-VB", "VB24-BLK-M"),
    ("Tweed Coat FW24", "RETIRED-TC", "TC24-GRY-L"),
    ("Silk Dress SS25", "RETIRED-SD", "SD25-RED-38"),
    ("Linen Shorts SS25", "RETIRED-LS", "LS25-BEI-30"),
)
DEMO_BARCODE_PREFIX = "3760"  # a French GS1 prefix; 8-digit serial follows
DEMO_RETIRED_SERIAL_BASE = 90_000_000
DEMO_UPC_PREFIX = "8"  # UPC-A number system; 10-digit serial follows
SCALE_BARCODE_PREFIX = "376"  # 9-digit serial follows
SCALE_LOCATION_NAMES = ("Warehouse North", "Warehouse South", "Flagship Store")
SCALE_PRICES = ("29.00", "39.00", "49.00", "59.00", "79.00", "89.00", "119.00", "149.00")


def gs1_check_digit(data_digits: str) -> str:
    """The GS1 check digit (EAN-13, UPC-A): weights 3, 1, 3, … from the rightmost data digit."""
    reversed_digits = data_digits[::-1]
    total = 3 * sum(map(int, reversed_digits[0::2])) + sum(map(int, reversed_digits[1::2]))
    return str(-total % 10)


def with_check_digit(data_digits: str) -> str:
    return data_digits + gs1_check_digit(data_digits)


def with_wrong_check_digit(data_digits: str) -> str:
    """A barcode that looks right but fails the check: what a typo in a spreadsheet produces."""
    return data_digits + str((int(gs1_check_digit(data_digits)) + 5) % 10)


def lnb_ean13(barcode: str | None) -> str | None:
    """The EAN13 LNB would key a Shopify barcode on: trimmed, UPC-A zero-padded, or None if invalid."""
    code = (barcode or "").strip()
    if len(code) == 12 and code.isdigit() and gs1_check_digit(code[:-1]) == code[-1]:
        code = "0" + code
    if len(code) == 13 and code.isdigit() and gs1_check_digit(code[:-1]) == code[-1]:
        return code
    return None


def _timestamp(minutes_after_epoch: int) -> str:
    return (EPOCH + timedelta(minutes=minutes_after_epoch)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ascii_slug(text: str) -> str:
    """``Zürich Atelier`` -> ``zurich-atelier``: for e-mail domains, which stay ASCII."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in plain).split())


# ---------------------------------------------------------------------------------------------
# LNB objects, shared by both generators
# ---------------------------------------------------------------------------------------------


def _address(reference: str, profile: RetailerProfile, number: int) -> dict[str, Any]:
    return {
        "reference": reference,
        "company": profile.name,
        "country": profile.country,
        "contact_name": f"{profile.buyer_first_name} {profile.buyer_last_name}",
        "contact_email": _buyer_email(profile),
        "tel": f"{DIALLING_CODES[profile.country]} {100_000_000 + number * 7919}",
        "address_1": profile.street,
        "address_2": None,
        "zipcode": profile.zipcode,
        "city": profile.city,
        "vat_number": (None if profile.country == "US"
                       else f"{profile.country}{40_000_000_000 + number * 104_729}"),
    }


def _buyer_email(profile: RetailerProfile) -> str:
    return f"{_ascii_slug(profile.buyer_first_name)}@{_ascii_slug(profile.name)}.example"


def _retailer(reference: str | None, profile: RetailerProfile, number: int) -> dict[str, Any]:
    """An LNB retailer; ``number`` keeps its addresses and timestamps distinct and stable."""
    address_reference = f"ADR-{number:05d}"
    retailer: dict[str, Any] = {
        "reference": reference,
        "name": profile.name,
        "price_list_code": "WHOLESALE-USD" if profile.country == "US" else "WHOLESALE-EUR",
        "terms_of_payment": "30 days end of month",
        "terms_of_delivery": "DAP",
        "sales_rep_email": SALES_REP_EMAIL,
        "billing_address": _address(f"{address_reference}-B", profile, number),
        "store_address": _address(f"{address_reference}-S", profile, number),
        "delivery_addresses": [_address(f"{address_reference}-D1", profile, number)],
        "buyers": [{
            "email": _buyer_email(profile),
            "first_name": profile.buyer_first_name,
            "last_name": profile.buyer_last_name,
        }],
    }
    retailer.update({f"extra_{n}": None for n in range(1, 10)})
    retailer["create_time"] = _timestamp(number * 37)
    retailer["update_time"] = _timestamp(number * 37 + 600)
    return retailer


@dataclass(frozen=True)
class Article:
    """A variant as LNB's catalogue knows it: what an order line says about the product."""

    style_reference: str
    name: str
    colour: str
    size: str
    retail_price: float
    ean13: str | None
    sku: str | None


def _order_item(article: Article, quantity: int, price_factor: float = 1.0) -> dict[str, Any]:
    retail_price = round(article.retail_price * price_factor, 2)
    return {
        "reference": article.style_reference,
        "name": article.name,
        "collection_name": COLLECTION_NAME,
        "color": article.colour,
        "size": article.size,
        "quantity": quantity,
        "unit_price": round(retail_price / WHOLESALE_MARKUP, 2),
        "recommended_retail_price": retail_price,
        "discount_rate": 0.0,
        "discount_amount": 0.0,
        "ean13": article.ean13,
        "sku": article.sku,
        "sku_extra_1": None,
    }


def _order(
    reference: str,
    status: str,
    retailer: dict[str, Any],
    items: list[dict[str, Any]],
    created_minutes: int,
    *,
    currency: str = "EUR",
    purchase_order_reference: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """An LNB order; its amounts, times and addresses follow from the retailer, items and status."""
    total = round(sum(item["unit_price"] * item["quantity"] for item in items), 2)
    buyer = retailer["buyers"][0]
    return {
        "reference": reference,
        "create_time": _timestamp(created_minutes),
        "update_time": _timestamp(created_minutes + 180),
        "confirmation_time": _timestamp(created_minutes + 120) if status in CONFIRMED_LIKE_STATUSES else None,
        "cancellation_time": _timestamp(created_minutes + 150) if status == "canceled" else None,
        "status": status,
        "purchase_order_reference": purchase_order_reference,
        "retailer_reference": retailer["reference"],
        "retailer_name": retailer["name"],
        "buyer_name": buyer["last_name"],
        "buyer_first_name": buyer["first_name"],
        "buyer_email": buyer["email"],
        "sales_person_email": retailer["sales_rep_email"],
        "currency": currency,
        "amount_total": total,
        "amount_total_tax_inclusive": round(total * (1 + VAT_RATE), 2),
        "amount_shipping": 0.0,
        "amount_discount": 0.0,
        "discount_rate": 0.0,
        "comment": comment,
        "terms_of_payment": retailer["terms_of_payment"],
        "terms_of_delivery": retailer["terms_of_delivery"],
        "delivery_start_on": DELIVERY_START_ON,
        "delivery_end_on": DELIVERY_END_ON,
        "order_type": "preorder",
        "billing_address": dict(retailer["billing_address"]),
        "delivery_address": dict(retailer["delivery_addresses"][0]),
        "items": items,
    }


def _inventory_row(ean13: str | None, sku: str | None, in_stock: int) -> dict[str, Any]:
    return {
        "ean13": ean13,
        "sku": sku,
        "extra_1": None,
        "in_stock": in_stock,
        "in_stock_update_time": INVENTORY_UPDATE_TIME,
        "incoming_stock": 0,
        "incoming_stock_date": None,
        "is_blocked": False,
    }


def _customer(customer_id: int, profile: RetailerProfile, retailer_reference: str | None) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": _buyer_email(profile),
        "first_name": profile.buyer_first_name,
        "last_name": profile.buyer_last_name,
        "metafields": {RETAILER_REFERENCE_METAFIELD: retailer_reference} if retailer_reference else {},
    }


def _company(
    company_id: int, retailer: dict[str, Any], profile: RetailerProfile, contact_customer_id: int,
) -> dict[str, Any]:
    """A B2B company whose external id is the retailer reference; ids are unique shop-wide."""
    return {
        "id": company_id,
        "name": retailer["name"],
        "external_id": retailer["reference"],
        "locations": [{"id": company_id, "name": f"{retailer['name']} – {profile.city}"}],
        "contacts": [{"id": company_id, "customer_id": contact_customer_id}],
    }


def _available_at_active_locations(variant: dict[str, Any], active_location_keys: frozenset[str]) -> int:
    stock = variant["stock"]
    return sum(level.get("available", 0) for key, level in stock.items() if key in active_location_keys)


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------


@dataclass
class _CatalogueEntry:
    """A demo variant with what the product knows about it (colour, size, style)."""

    product: dict[str, Any]
    variant: dict[str, Any]
    style_reference: str
    colour: str
    size: str

    @property
    def variant_id(self) -> int:
        return self.variant["id"]

    def article(self) -> Article:
        return Article(
            self.style_reference, self.product["title"], self.colour, self.size,
            float(self.variant["price"]), lnb_ean13(self.variant["barcode"]), self.variant["sku"],
        )


class _DemoBuilder:
    """Builds the demo scenario and, alongside, the record of where each deliberate case lives."""

    LOCATIONS = (
        {"id": 1, "name": "Paris Warehouse", "active": True},
        {"id": 2, "name": "Amsterdam Store", "active": True},
        {"id": 3, "name": "Old Depot", "active": False},
    )
    ACTIVE_LOCATION_KEYS = frozenset({"1", "2"})
    INACTIVE_LOCATION_KEY = "3"
    PRODUCT_COUNT = 100
    DRAFT_PRODUCTS = 4
    ARCHIVED_PRODUCTS = 3
    FIRST_VARIANT_ID = 1001

    def __init__(self) -> None:
        self.rng = random.Random(DEMO_SEED)
        self.cases: dict[str, list[Any]] = {}
        self.products: list[dict[str, Any]] = []
        self.entries: list[_CatalogueEntry] = []
        self.clean_entries: list[_CatalogueEntry] = []
        self.duplicate_barcode_entries: list[_CatalogueEntry] = []
        self.upc_entries: list[_CatalogueEntry] = []

    def build(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        self._build_catalogue()
        self._inject_variant_cases()
        self._record_stock_cases()
        customers, companies, retailers = self._build_parties()
        orders = self._build_orders(retailers)
        inventory = self._build_inventory()
        scenario = {
            "shop": {"name": "Maison Demo", "domain": "maison-demo.myshopify.com", "currency": "EUR"},
            "metafield_definitions": [dict(definition) for definition in METAFIELD_DEFINITIONS],
            "locations": [dict(location) for location in self.LOCATIONS],
            "products": self.products,
            "customers": customers,
            "companies": companies,
            "orders": [],
            "lnb": {"retailers": [r for group in retailers.values() for r in group], "orders": orders,
                    "inventory": inventory},
        }
        return scenario, self.cases

    # -- Shopify catalogue -------------------------------------------------------------------

    def _build_catalogue(self) -> None:
        rng = self.rng
        titles = rng.sample(list(cartesian_product(FABRICS, GARMENTS)), self.PRODUCT_COUNT)
        statuses = (["DRAFT"] * self.DRAFT_PRODUCTS + ["ARCHIVED"] * self.ARCHIVED_PRODUCTS
                    + ["ACTIVE"] * (self.PRODUCT_COUNT - self.DRAFT_PRODUCTS - self.ARCHIVED_PRODUCTS))
        rng.shuffle(statuses)
        style_counts: dict[str, int] = {}
        variant_id = self.FIRST_VARIANT_ID
        numbered = enumerate(zip(titles, statuses), start=1)
        for product_id, ((fabric, (garment, sizes, base_price)), status) in numbered:
            title = f"{fabric} {garment}"
            initials = "".join(word[0] for word in title.split())
            style_counts[initials] = style_counts.get(initials, 0) + 1
            style = initials if style_counts[initials] == 1 else f"{initials}{style_counts[initials]}"
            price = f"{base_price + rng.choice((0, 0, 10, 20))}.00"
            product: dict[str, Any] = {"id": product_id, "title": title, "status": status, "variants": []}
            self.products.append(product)
            for (colour, colour_code), size in self._pick_colours_and_sizes(sizes):
                size_code = "OS" if size == ONE_SIZE[0] else size
                variant = {
                    "id": variant_id,
                    "title": f"{colour} / {size}",
                    "sku": f"{style}-{colour_code}-{size_code}",
                    "barcode": with_check_digit(f"{DEMO_BARCODE_PREFIX}{variant_id:08d}"),
                    "price": price,
                    "tracked": True,
                    "stock": self._random_stock(),
                }
                product["variants"].append(variant)
                self.entries.append(_CatalogueEntry(product, variant, style, colour, size))
                variant_id += 1
        self.cases["product_draft"] = [p["id"] for p in self.products if p["status"] == "DRAFT"]
        self.cases["product_archived"] = [p["id"] for p in self.products if p["status"] == "ARCHIVED"]

    def _pick_colours_and_sizes(self, sizes: tuple[str, ...]) -> list[tuple[tuple[str, str], str]]:
        """Between 2 and 8 colour × size combinations, sizes a contiguous run of the size scale."""
        rng = self.rng
        colour_count = rng.randint(2, 4) if len(sizes) == 1 else rng.choice((1, 1, 2, 2, 3, 4))
        size_count = rng.randint(math.ceil(2 / colour_count), min(len(sizes), 8 // colour_count))
        first_size = rng.randint(0, len(sizes) - size_count)
        colours = rng.sample(COLOURS, colour_count)
        return list(cartesian_product(colours, sizes[first_size:first_size + size_count]))

    def _random_stock(self) -> dict[str, dict[str, int]]:
        """Paris always, Amsterdam often, the inactive Old Depot sometimes; side quantities now and then."""
        rng = self.rng
        stock = {"1": {"available": rng.randint(0, 40)}}
        if rng.random() < 0.5:
            stock["2"] = {"available": rng.randint(0, 15)}
        if rng.random() < 0.15:
            stock[self.INACTIVE_LOCATION_KEY] = {"available": rng.randint(1, 10)}
        for level in stock.values():
            for name in SECONDARY_QUANTITY_NAMES:
                if rng.random() < 0.08:
                    level[name] = rng.randint(1, 6)
        return stock

    def _inject_variant_cases(self) -> None:
        """Spoil a few variants of active products, each in one way only; the rest stay clean."""
        pool = [entry for entry in self.entries if entry.product["status"] == "ACTIVE"]
        self.rng.shuffle(pool)

        def take(count: int) -> list[_CatalogueEntry]:
            taken = pool[:count]
            del pool[:count]
            return taken

        def record(case: str, entries: list[_CatalogueEntry]) -> None:
            self.cases[case] = [entry.variant_id for entry in entries]

        without_barcode = take(3)
        for entry, blank in zip(without_barcode, (None, None, "")):
            entry.variant["barcode"] = blank
        record("variant_without_barcode", without_barcode)

        without_sku = take(3)
        for entry, blank in zip(without_sku, (None, None, "")):
            entry.variant["sku"] = blank
        record("variant_without_sku", without_sku)

        without_both = take(2)
        for entry in without_both:
            entry.variant["barcode"] = entry.variant["sku"] = None
        record("variant_without_barcode_and_sku", without_both)

        invalid = take(3)
        for entry in invalid:
            entry.variant["barcode"] = with_wrong_check_digit(entry.variant["barcode"][:-1])
        record("invalid_ean13", invalid)

        self.upc_entries = take(3)
        for entry in self.upc_entries:
            entry.variant["barcode"] = with_check_digit(f"{DEMO_UPC_PREFIX}{entry.variant_id:010d}")
        record("upc_barcode", self.upc_entries)

        padded = take(3)
        for entry, (before, after) in zip(padded, ((" ", ""), ("", " "), ("  ", "\t"))):
            entry.variant["barcode"] = f"{before}{entry.variant['barcode']}{after}"
        record("barcode_with_whitespace", padded)

        duplicated_barcodes = take(6)
        for original, copy in zip(duplicated_barcodes[0::2], duplicated_barcodes[1::2]):
            copy.variant["barcode"] = original.variant["barcode"]
        self.duplicate_barcode_entries = duplicated_barcodes[0::2]
        record("duplicate_barcode", duplicated_barcodes)

        duplicated_skus = take(4)
        for original, copy in zip(duplicated_skus[0::2], duplicated_skus[1::2]):
            copy.variant["sku"] = original.variant["sku"]
        record("duplicate_sku", duplicated_skus)

        negative = take(4)
        for entry in negative:
            entry.variant["stock"]["1"]["available"] = -self.rng.randint(1, 6)
        negative[0].variant["stock"]["2"] = {"available": 9}  # negative in Paris, positive overall
        record("negative_available", negative)

        untracked = take(3)
        for entry in untracked:
            entry.variant["tracked"] = False
        record("untracked", untracked)

        self.clean_entries = pool

    def _record_stock_cases(self) -> None:
        def variant_ids(condition: Any) -> list[int]:
            return [entry.variant_id for entry in self.entries if condition(entry.variant["stock"])]

        inactive = self.INACTIVE_LOCATION_KEY
        self.cases["stock_at_inactive_location"] = variant_ids(lambda stock: inactive in stock)
        self.cases["stock_at_several_locations"] = variant_ids(lambda stock: len(stock) > 1)
        for name in SECONDARY_QUANTITY_NAMES:
            self.cases[f"nonzero_{name}"] = variant_ids(
                lambda stock, name=name: any(level.get(name, 0) for level in stock.values()))

    # -- customers, companies, retailers -----------------------------------------------------

    def _build_parties(
        self,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Shopify customers and companies, and LNB retailers grouped by how they match Shopify."""
        number = iter(range(1, 100))
        matched = [_retailer(f"R{1000 + n}", profile, next(number))
                   for n, profile in enumerate(DEMO_RETAILERS_MATCHED, start=1)]
        company_only = _retailer(f"R{1000 + len(matched) + 1}", DEMO_RETAILER_COMPANY_ONLY, next(number))
        without_reference = [_retailer(blank, profile, next(number))
                             for blank, profile in zip((None, "", "   "), DEMO_RETAILERS_WITHOUT_REFERENCE)]
        unmatched = [_retailer(f"R{9000 + n}", profile, next(number))
                     for n, profile in enumerate(DEMO_RETAILERS_UNMATCHED, start=1)]

        customers = [_customer(customer_id, profile, retailer["reference"])
                     for customer_id, (profile, retailer)
                     in enumerate(zip(DEMO_RETAILERS_MATCHED, matched), start=1)]
        company_contact_id = len(customers) + 1
        customers.append(_customer(company_contact_id, DEMO_RETAILER_COMPANY_ONLY, None))
        customers.append({"id": company_contact_id + 1, "email": "hugo.moreau@mail.example",  # a consumer
                          "first_name": "Hugo", "last_name": "Moreau", "metafields": {}})

        companies = [_company(company_id, retailer, profile, customer_id)
                     for company_id, (retailer, profile, customer_id)
                     in enumerate(zip(matched[:3], DEMO_RETAILERS_MATCHED[:3], (1, 2, 3)), start=1)]
        companies.append(
            _company(len(companies) + 1, company_only, DEMO_RETAILER_COMPANY_ONLY, company_contact_id))

        self.cases["retailer_matched_by_customer"] = [r["name"] for r in matched]
        self.cases["retailer_matched_by_company"] = [r["name"] for r in matched[:3]] + [company_only["name"]]
        self.cases["retailer_matched_by_company_only"] = [company_only["name"]]
        self.cases["retailer_without_reference"] = [r["name"] for r in without_reference]
        self.cases["retailer_reference_unmatched"] = [r["name"] for r in unmatched]
        self.cases["customer_without_retailer_reference"] = [
            customer["id"] for customer in customers if not customer["metafields"]]
        retailers = {"matched": matched, "company_only": [company_only],
                     "without_reference": without_reference, "unmatched": unmatched}
        return customers, companies, retailers

    # -- LNB orders ------------------------------------------------------------------------

    def _clean_items(self, count: int, price_factor: float = 1.0) -> list[dict[str, Any]]:
        return [_order_item(entry.article(), self.rng.randint(1, 12), price_factor)
                for entry in self.rng.sample(self.clean_entries, count)]

    def _build_orders(self, retailers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Confirmed orders each carrying one deliberate problem (or none), then the other statuses."""
        rng = self.rng
        matched = retailers["matched"]
        orders: list[dict[str, Any]] = []

        def add(status: str, retailer: dict[str, Any], items: list[dict[str, Any]], *cases: str,
                currency: str = "EUR") -> None:
            number = len(orders) + 1
            reference = f"LNB-{number:04d}"
            orders.append(_order(
                reference, status, retailer, items, created_minutes=number * 7 * 60 + 9 * 60,
                currency=currency,
                purchase_order_reference=None if number % 5 == 0 else f"PO-{2026_000 + number}",
                comment=ORDER_COMMENTS[number % len(ORDER_COMMENTS)],
            ))
            for case in cases:
                self.cases.setdefault(case, []).append(reference)

        def with_extra(item: dict[str, Any]) -> list[dict[str, Any]]:
            return [*self._clean_items(rng.randint(1, 5)), item]

        retired_title, retired_style, retired_sku = DEMO_RETIRED_ARTICLES[0]
        retired_ean13 = with_check_digit(f"{DEMO_BARCODE_PREFIX}{DEMO_RETIRED_SERIAL_BASE:08d}")
        unknown_article = Article(
            retired_style, retired_title, "Black", "M", 189.0, retired_ean13, retired_sku)
        codeless_article = replace(self.clean_entries[0].article(), ean13=None, sku="")
        sku_only_article = replace(self.clean_entries[1].article(), ean13=None)

        upc_article = self.upc_entries[0].article()
        duplicated_article = self.duplicate_barcode_entries[0].article()
        without_reference, unmatched = retailers["without_reference"], retailers["unmatched"]
        clean = self._clean_items

        add("confirmed", matched[0], clean(3), "order_valid", "order_retailer_company")
        add("confirmed", matched[3], clean(4), "order_valid")
        add("confirmed", matched[6], clean(2), "order_valid")
        add("confirmed", matched[4], with_extra(_order_item(sku_only_article, 4)), "order_line_sku_only")
        add("confirmed", matched[5], with_extra(_order_item(upc_article, 3)), "order_line_upc_barcode")
        add("confirmed", retailers["company_only"][0], clean(3), "order_retailer_company_only")
        add("confirmed", matched[7], with_extra(_order_item(codeless_article, 2)), "order_line_without_code")
        add("confirmed", matched[8], with_extra(_order_item(unknown_article, 5)), "order_line_unknown_code")
        add("confirmed", matched[9], with_extra(_order_item(duplicated_article, 6)),
            "order_line_duplicate_barcode")
        add("confirmed", without_reference[0], clean(2), "order_retailer_without_reference")
        add("confirmed", without_reference[2], clean(3), "order_retailer_without_reference")
        add("confirmed", unmatched[0], clean(2), "order_retailer_reference_unmatched")
        zero_quantity_items = clean(3)
        zero_quantity_items[-1]["quantity"] = 0
        add("confirmed", matched[10], zero_quantity_items, "order_line_quantity_zero")
        add("confirmed", matched[1], [], "order_without_items")
        add("confirmed", matched[11], clean(3, USD_PER_EUR), "order_currency_usd", currency="USD")
        for index, status in enumerate(OTHER_ORDER_STATUSES * 2):
            add(status, matched[index % len(matched)], clean(rng.randint(1, 6)), "order_not_confirmed")
        return orders

    # -- LNB inventory -----------------------------------------------------------------------

    def _build_inventory(self) -> list[dict[str, Any]]:
        """One row per distinct valid EAN13 (first variant wins) minus a few, plus retired rows."""
        rng = self.rng
        missing = rng.sample(self.clean_entries, 4)
        missing_ids = {entry.variant_id for entry in missing}
        self.cases["variant_missing_from_lnb_inventory"] = [entry.variant_id for entry in missing]
        for case in ("inventory_equal_to_shopify", "inventory_different_from_shopify",
                     "inventory_upc_row", "inventory_row_without_ean13", "inventory_lnb_only"):
            self.cases[case] = []
        upc_ids = {entry.variant_id for entry in self.upc_entries}
        duplicated = set(self.cases["duplicate_barcode"])
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in self.entries:
            variant = entry.variant
            ean13 = lnb_ean13(variant["barcode"])
            if entry.variant_id in missing_ids or ean13 in seen:
                continue
            if ean13 is None:
                if variant["sku"] and not (variant["barcode"] or "").strip():
                    rows.append(_inventory_row(None, variant["sku"], rng.randint(0, 30)))
                    self.cases["inventory_row_without_ean13"].append(variant["sku"])
                continue
            seen.add(ean13)
            if entry.variant_id in upc_ids:
                self.cases["inventory_upc_row"].append(ean13)
            if entry.variant_id not in duplicated and self._stock_is_unambiguous(variant):
                shopify_available = _available_at_active_locations(variant, self.ACTIVE_LOCATION_KEYS)
                if rng.random() < 0.7:
                    in_stock = shopify_available
                    self.cases["inventory_equal_to_shopify"].append(ean13)
                else:
                    in_stock = shopify_available + rng.randint(1, 9)
                    self.cases["inventory_different_from_shopify"].append(ean13)
            else:
                in_stock = rng.randint(0, 30)
            rows.append(_inventory_row(ean13, variant["sku"], in_stock))
        for serial, (_, _, sku) in enumerate(DEMO_RETIRED_ARTICLES, start=DEMO_RETIRED_SERIAL_BASE):
            ean13 = with_check_digit(f"{DEMO_BARCODE_PREFIX}{serial:08d}")
            rows.append(_inventory_row(ean13, sku, rng.randint(0, 12)))
            self.cases["inventory_lnb_only"].append(ean13)
        return rows

    def _stock_is_unambiguous(self, variant: dict[str, Any]) -> bool:
        """Tracked, nothing at the inactive location, nothing negative: every sane rule sums it alike."""
        stock = variant["stock"]
        return (variant["tracked"] and self.INACTIVE_LOCATION_KEY not in stock
                and all(level.get("available", 0) >= 0 for level in stock.values()))


def demo_scenario() -> dict[str, Any]:
    """Maison Demo: ~100 products with several of each case the stock and order rules handle."""
    return _DemoBuilder().build()[0]


DEMO_CASES: dict[str, list[Any]] = _DemoBuilder().build()[1]
"""Where each deliberate demo case lives: variant/product/customer ids, retailer names, LNB order
references or EAN13s/SKUs, by case name. Tests look cases up here instead of hard-coding ids."""


# ---------------------------------------------------------------------------------------------
# scale:N
# ---------------------------------------------------------------------------------------------


def scale_anomalies(variants: int) -> dict[str, list[int]]:
    """Variant ids carrying each scale anomaly: one variant in 200, the kinds taken in turn."""
    anomalies: dict[str, list[int]] = {kind: [] for kind in SCALE_ANOMALY_KINDS}
    for turn, index in enumerate(range(SCALE_ANOMALY_OFFSET, variants, SCALE_ANOMALY_INTERVAL)):
        anomalies[SCALE_ANOMALY_KINDS[turn % len(SCALE_ANOMALY_KINDS)]].append(index + 1)
    return anomalies


def scale_scenario(variants: int, retailers: int | None = None) -> dict[str, Any]:
    """``variants`` variants in products of 8 (2 colours × 4 sizes) at 3 locations, ~0.5 % anomalies,
    retailers (one in 1 000 variants unless ``retailers`` says), orders and an LNB inventory in
    proportion. Kept to cheap per-row work: it is timed."""
    if variants < 1:
        raise ValueError("scale_scenario needs at least one variant")
    rng = random.Random(SCALE_SEED)
    anomalies = scale_anomalies(variants)
    products, inventory = _scale_catalogue(variants, anomalies, rng)
    customers, lnb_retailers = _scale_parties(retailers if retailers is not None else max(10, variants // 1000))
    duplicated_originals = {variant_id - 1 for kind in ("duplicate_barcode", "duplicate_sku")
                            for variant_id in anomalies[kind]}
    unorderable = {variant_id for ids in anomalies.values() for variant_id in ids} | duplicated_originals
    orderable = [(product, variant) for product in products for variant in product["variants"]
                 if variant["id"] not in unorderable]
    return {
        "shop": {"name": "Scale Brand", "domain": "scale-brand.myshopify.com", "currency": "EUR"},
        "metafield_definitions": [dict(definition) for definition in METAFIELD_DEFINITIONS],
        "locations": [{"id": n, "name": name, "active": True}
                      for n, name in enumerate(SCALE_LOCATION_NAMES, start=1)],
        "products": products,
        "customers": customers,
        "companies": [],
        "orders": [],
        "lnb": {
            "retailers": lnb_retailers,
            "orders": _scale_orders(max(20, variants // 100), orderable, lnb_retailers, rng),
            "inventory": inventory,
        },
    }


def _scale_catalogue(
    variants: int, anomalies: dict[str, list[int]], rng: random.Random,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shopify products and LNB's inventory rows (~99 % of the valid barcodes), in one pass."""
    anomaly_by_variant_id = {variant_id: kind for kind, ids in anomalies.items() for variant_id in ids}
    random_available = rng.choices(range(41), k=variants * len(SCALE_LOCATION_NAMES))
    colour_pairs = [(COLOURS[n], COLOURS[(n + 5) % len(COLOURS)]) for n in range(len(COLOURS))]
    sizes = TOP_SIZES[1:5]
    products: list[dict[str, Any]] = []
    inventory: list[dict[str, Any]] = []
    barcode = sku = ""
    for product_index, first_index in enumerate(range(0, variants, SCALE_VARIANTS_PER_PRODUCT)):
        style = _scale_style(product_index)
        price = SCALE_PRICES[product_index % len(SCALE_PRICES)]
        product_variants = []
        combinations = cartesian_product(colour_pairs[product_index % len(colour_pairs)], sizes)
        for index, ((colour, colour_code), size) in zip(range(first_index, variants), combinations):
            variant_id = index + 1
            anomaly = anomaly_by_variant_id.get(variant_id)
            previous_barcode, previous_sku = barcode, sku
            body = f"{SCALE_BARCODE_PREFIX}{variant_id:09d}"
            barcode = body + gs1_check_digit(body)
            sku = f"{style}-{colour_code}-{size}"
            stock = {  # one literal per variant: this loop runs N times and is timed
                "1": {"available": random_available[3 * index]},
                "2": {"available": random_available[3 * index + 1]},
                "3": {"available": random_available[3 * index + 2]},
            }
            if index % 9 == 0:
                stock["1"]["committed"] = 1 + index % 4
            tracked = True
            shown_barcode: str | None = barcode
            shown_sku: str | None = sku
            if anomaly == "missing_barcode":
                shown_barcode = None
            elif anomaly == "invalid_ean13":
                shown_barcode = with_wrong_check_digit(body)
            elif anomaly == "duplicate_barcode":
                shown_barcode = previous_barcode
            elif anomaly == "missing_sku":
                shown_sku = None
            elif anomaly == "duplicate_sku":
                shown_sku = previous_sku
            elif anomaly == "negative_available":
                stock["1"]["available"] = -(1 + index % 5)
            elif anomaly == "untracked":
                tracked = False
            product_variants.append({
                "id": variant_id, "title": f"{colour} / {size}", "sku": shown_sku, "barcode": shown_barcode,
                "price": price, "tracked": tracked, "stock": stock,
            })
            in_lnb = index % SCALE_INVENTORY_SKIP_INTERVAL != SCALE_INVENTORY_SKIP_INTERVAL - 1
            if shown_barcode == barcode and in_lnb:
                in_stock = max(0, stock["1"]["available"] + stock["2"]["available"] + stock["3"]["available"])
                drift = 3 if index % 10 == 3 else 0  # one row in ten out of step with Shopify
                inventory.append(_inventory_row(barcode, shown_sku, in_stock + drift))
        garment = GARMENTS[product_index % len(GARMENTS)][0]
        fabric = FABRICS[product_index % len(FABRICS)]
        products.append({"id": product_index + 1, "title": f"{fabric} {garment} {style}", "status": "ACTIVE",
                         "variants": product_variants})
    return products, inventory


def _scale_style(product_index: int) -> str:
    return f"SC{product_index + 1:06d}"


def _scale_parties(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` Shopify customers and as many LNB retailers, each pair sharing a reference."""
    customers, retailers = [], []
    for number in range(1, count + 1):
        template = DEMO_RETAILERS_MATCHED[number % len(DEMO_RETAILERS_MATCHED)]
        profile = template._replace(name=f"{template.name} {number:05d}")
        reference = f"SR{number:05d}"
        retailers.append(_retailer(reference, profile, number))
        customers.append(_customer(number, profile, reference))
    return customers, retailers


def _scale_orders(
    count: int, orderable: list[tuple[dict[str, Any], dict[str, Any]]], retailers: list[dict[str, Any]],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Nine orders in ten confirmed, five clean lines each (fewer if the catalogue is smaller)."""
    orders = []
    for number in range(1, count + 1):
        other_status = OTHER_ORDER_STATUSES[(number // 10) % len(OTHER_ORDER_STATUSES)]
        status = "confirmed" if number % 10 else other_status
        items = []
        for product, variant in rng.sample(orderable, min(SCALE_ITEMS_PER_ORDER, len(orderable))):
            colour, size = variant["title"].split(" / ")
            article = Article(_scale_style(product["id"] - 1), product["title"], colour, size,
                              float(variant["price"]), variant["barcode"], variant["sku"])
            items.append(_order_item(article, 1 + rng.randrange(12)))
        orders.append(_order(f"SCL-{number:06d}", status, retailers[number % len(retailers)], items,
                             created_minutes=number * 11, purchase_order_reference=f"PO-S{number:06d}"))
    return orders


# ---------------------------------------------------------------------------------------------
# readiness switches: a shop not ready to go live, one point at a time
# ---------------------------------------------------------------------------------------------

SCOPES_MISSING = ("write_orders", "read_all_orders")
"""What ``scopes_missing`` takes away: the order export's scope (blocking) and ``read_all_orders`` (a warning)."""
SETUP_SCOPE = "write_customers"
"""The scope ``shopify_setup`` needs to create the customer definition; ``definitions_missing`` grants it."""
LOW_BARCODE_EVERY = 5
LOW_BARCODE_BLANKED = (0, 2)
"""``low_barcode_coverage`` blanks the barcode of the 1st and 3rd variant of every 5: 40 % of them."""


def _scopes(scenario: dict[str, Any]) -> list[str]:
    return list(scenario.setdefault("shop", {}).get("scopes", DEFAULT_SCOPES))


def _scopes_missing(scenario: dict[str, Any]) -> None:
    scenario["shop"]["scopes"] = [scope for scope in _scopes(scenario) if scope not in SCOPES_MISSING]


def _definitions_missing(scenario: dict[str, Any]) -> None:
    scenario["metafield_definitions"] = []
    scenario["shop"]["scopes"] = list(dict.fromkeys([*_scopes(scenario), SETUP_SCOPE]))


def _development_store(scenario: dict[str, Any]) -> None:
    scenario.setdefault("shop", {})["development"] = True


def _retailers_unmatched(scenario: dict[str, Any]) -> None:
    for customer in scenario.get("customers", []):
        customer.get("metafields", {}).pop(RETAILER_REFERENCE_METAFIELD, None)
    for company in scenario.get("companies", []):
        company["external_id"] = None


def _low_barcode_coverage(scenario: dict[str, Any]) -> None:
    variants = (variant for product in scenario.get("products", []) for variant in product.get("variants", []))
    for index, variant in enumerate(variants):
        if index % LOW_BARCODE_EVERY in LOW_BARCODE_BLANKED:
            variant["barcode"] = None


RENAMED_STATUS = ("invoicing", "invoiced")
"""``lnb_statuses_differ``: the status code LNB's API would name otherwise (the codes are assumed)."""


def _lnb_statuses_differ(scenario: dict[str, Any]) -> None:
    before, after = RENAMED_STATUS
    lnb = scenario.setdefault("lnb", {})
    lnb["order_statuses"] = [after if status == before else status for status in ORDER_STATUSES]
    for order in lnb.get("orders", []):
        if order.get("status") == before:
            order["status"] = after


READINESS_SWITCHES: dict[str, Callable[[dict[str, Any]], None]] = {
    "scopes_missing": _scopes_missing,
    "definitions_missing": _definitions_missing,
    "development_store": _development_store,
    "retailers_unmatched": _retailers_unmatched,
    "low_barcode_coverage": _low_barcode_coverage,
    "lnb_statuses_differ": _lnb_statuses_differ,
}
"""What each switch of a scenario spec (``demo+scopes_missing``) changes, so that one row of the
readiness report fails: ``scopes_missing`` takes ``write_orders`` and ``read_all_orders`` away;
``definitions_missing`` removes both custom id definitions (and grants ``write_customers``, which
``shopify_setup`` needs to create the customer one); ``development_store`` makes a development store;
``retailers_unmatched`` takes the retailer reference off every customer and company;
``low_barcode_coverage`` blanks 40 % of the barcodes; ``lnb_statuses_differ`` makes LNB's API call the
status ``invoicing`` ``invoiced`` (``lnb.order_statuses``), as an account whose codes are not the
assumed ones would."""


def with_switches(scenario: dict[str, Any], switches: list[str]) -> dict[str, Any]:
    """``scenario`` changed in place by each of ``switches`` (names of ``READINESS_SWITCHES``), and returned."""
    unknown = [name for name in switches if name not in READINESS_SWITCHES]
    if unknown:
        raise ValueError(f"unknown switch(es) {', '.join(map(repr, unknown))}; switches: "
                         f"{', '.join(READINESS_SWITCHES)}")
    for name in switches:
        READINESS_SWITCHES[name](scenario)
    return scenario
