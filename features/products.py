"""The bank's product catalogue, read from its ``products`` table (docs/design.md §11).

Per-product features, labels, models, offers and reason texts all follow this table. A
product's display names come from the table's optional ``name_zh`` / ``name_en`` columns,
then from the configuration's ``[product_labels]``; a product with neither keeps its code.
The catalogue travels with every feature file (parquet metadata) and every model, so
training and serving never need the warehouse to name a product.
"""

from __future__ import annotations

import base64
import json

import pandas as pd
import pyarrow.parquet as pq

from features.config import BankConfig, Names, Product

METADATA_KEY = b"retain.products"
NAME_COLUMNS = {"zh": "name_zh", "en": "name_en"}


def products_from_frame(frame: pd.DataFrame) -> tuple[Product, ...]:
    """Products from the rows of a ``products`` table (extra columns ignored)."""
    products = []
    for row in frame.sort_values("product").to_dict("records"):
        names = {
            lang: row[column]
            for lang, column in NAME_COLUMNS.items()
            if isinstance(row.get(column), str) and row[column]
        }
        products.append(
            Product(
                product=str(row["product"]),
                kind=row["kind"],
                margin_rate=float(row.get("margin_rate") or 0.0),
                fee_per_year=float(row.get("fee_per_year") or 0.0),
                names=Names(**names),
            )
        )
    return tuple(products)


def resolve_products(products_table, config: BankConfig) -> BankConfig:
    """``config`` with the catalogue of an Ibis ``products`` table (configured names win)."""
    return config.with_products(products_from_frame(products_table.to_pandas()))


def products_to_json(products: tuple[Product, ...]) -> list[dict]:
    return [p.model_dump(mode="json") for p in products]


def products_from_json(payload: list[dict]) -> tuple[Product, ...]:
    return tuple(Product.model_validate(p) for p in payload)


def products_metadata(products: tuple[Product, ...]) -> dict[str, str]:
    """Parquet key-value metadata that carries the catalogue with a feature file: the JSON,
    base64-encoded, so it survives any writer's quoting (DuckDB's ``KV_METADATA`` takes a SQL
    literal) with Chinese names and apostrophes intact."""
    payload = json.dumps(products_to_json(products), ensure_ascii=False).encode()
    return {METADATA_KEY.decode(): base64.b64encode(payload).decode("ascii")}


def read_products_metadata(path) -> tuple[Product, ...]:
    """The catalogue a feature file was built with; empty for a file without it."""
    metadata = pq.read_schema(path).metadata or {}
    payload = metadata.get(METADATA_KEY)
    return products_from_json(json.loads(base64.b64decode(payload))) if payload else ()


def open_products(location) -> tuple[Product, ...]:
    """The catalogue of a warehouse (a parquet directory or a database URL)."""
    from features.sources.tables import read_location_table

    return products_from_frame(read_location_table(location, "products"))
