"""The deterministic sample `products` data set, streamed as NDJSON: `python -m escli.sample --docs N`.

The same seed and count always give the same bytes. Documents are generated one at a time, so a million of them
take no more memory than ten. A few carry the awkward values exports get wrong: unicode, quotes, commas,
newlines, and values that start with = or -. The `clearance` field only appears in the last twentieth of the set,
so a CSV header taken from the first documents would miss it.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

MAPPING: dict[str, Any] = {
    "settings": {"number_of_shards": 2, "number_of_replicas": 0},
    "mappings": {
        "properties": {
            "id": {"type": "keyword"},
            "name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
            "description": {"type": "text"},
            "brand": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
            "category": {"type": "keyword"},
            "tags": {"type": "keyword"},
            "price": {"type": "float"},
            "rating": {"type": "float"},
            "stock": {"type": "integer"},
            "created_at": {"type": "date"},
            "clearance": {"type": "boolean"},
            "specs": {"type": "object", "dynamic": True},
        }
    },
}

CATEGORIES: dict[str, dict[str, list[Any]]] = {
    "electronics": {"voltage": [110, 220, 240], "warranty_years": [1, 2, 3]},
    "laptops": {"ram_gb": [8, 16, 32, 64], "cpu": ["i5", "i7", "ryzen 5", "ryzen 7", "m3"],
                "screen_in": [13, 14, 15.6]},
    "phones": {"storage_gb": [64, 128, 256, 512], "screen_in": [5.8, 6.1, 6.7], "color": ["black", "blue", "red"]},
    "cameras": {"megapixels": [12, 20, 24, 45], "sensor": ["aps-c", "full frame", "micro 4/3"]},
    "audio": {"wireless": [True, False], "driver_mm": [10, 40, 50]},
    "books": {"pages": [120, 240, 360, 800], "language": ["en", "fr", "de", "es"], "isbn_prefix": ["978", "979"]},
    "kitchen": {"material": ["steel", "cast iron", "ceramic"], "dishwasher_safe": [True, False]},
    "furniture": {"material": ["oak", "pine", "steel"], "width_cm": [40, 80, 120, 160]},
    "garden": {"material": ["plastic", "steel", "wood"], "outdoor": [True]},
    "toys": {"min_age": [3, 6, 8, 12], "battery": [True, False]},
    "sports": {"size": ["s", "m", "l", "xl"], "weight_kg": [0.5, 1.2, 5.0]},
    "clothing": {"size": ["xs", "s", "m", "l", "xl"], "fabric": ["cotton", "wool", "linen", "polyester"]},
    "shoes": {"eu_size": [38, 40, 42, 44, 46], "waterproof": [True, False]},
    "beauty": {"volume_ml": [30, 50, 100], "vegan": [True, False]},
    "grocery": {"organic": [True, False], "weight_g": [250, 500, 1000]},
    "automotive": {"fits": ["sedan", "suv", "truck"], "voltage": [12, 24]},
    "office": {"pack_of": [1, 5, 10, 50], "color": ["black", "blue"]},
    "pets": {"animal": ["dog", "cat", "bird"], "weight_kg": [1, 5, 10]},
    "music": {"format": ["vinyl", "cd", "cassette"], "genre": ["jazz", "rock", "classical"]},
    "games": {"platform": ["pc", "console", "handheld"], "players": [1, 2, 4]},
}
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent",
          "Aperture", "Vandelay", "Wonka", "Gringotts", "Oscorp", "Nakatomi", "Duff", "Monarch", "Pied Piper", "Zorg"]
ADJECTIVES = ["compact", "durable", "lightweight", "premium", "portable", "classic", "smart", "ergonomic",
              "wireless", "rugged", "elegant", "silent", "powerful", "eco", "vintage", "modular", "foldable",
              "waterproof", "handmade", "professional"]
NOUNS = {
    "electronics": ["charger", "adapter", "power bank", "smart plug"], "laptops": ["laptop", "notebook", "ultrabook"],
    "phones": ["phone", "smartphone"], "cameras": ["camera", "lens", "tripod"],
    "audio": ["headphones", "speaker", "earbuds"], "books": ["novel", "cookbook", "guide"],
    "kitchen": ["pan", "knife set", "kettle"], "furniture": ["desk", "chair", "shelf"],
    "garden": ["hose", "planter", "shovel"], "toys": ["puzzle", "robot", "board game"],
    "sports": ["yoga mat", "dumbbell", "racket"], "clothing": ["jacket", "sweater", "shirt"],
    "shoes": ["sneakers", "boots", "sandals"], "beauty": ["serum", "cream", "shampoo"],
    "grocery": ["coffee", "tea", "olive oil"], "automotive": ["wiper", "jump starter", "floor mat"],
    "office": ["stapler", "notebook", "pen"], "pets": ["leash", "bed", "feeder"],
    "music": ["album", "box set"], "games": ["game", "controller"],
}
WORDS = ("quality design comfort battery performance travel everyday home office outdoor kids family gift "
         "quick easy clean fresh strong reliable energy fast long life warranty materials tested crafted "
         "sustainable recycled certified award winning bestseller compatible upgrade bundle edition limited "
         "original genuine improved version hours daily use season collection ready").split()
TAGS = ["new", "sale", "bestseller", "eco", "gift", "limited", "refurbished", "bundle", "premium", "budget"]
AWKWARD = [
    ("Caf\u00e9 \u201cDeluxe\u201d, Gr\u00f6\u00dfe XL \u2014 \u65e5\u672c\u8a9e \U0001f600",
     'He said "great, really great", then left.\nSecond line, with a comma.'),
    ("=SUM(A1:A9)", "-starts with a minus, and has \"quotes\""),
    ("+plus, @at and \ttab", "line one\r\nline two\nline three"),
    ('"Quoted" name, with comma', "\u00e9\u00e8\u00ea \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629"),
]
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 24 * 3600


def product(i: int, total: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed * 1_000_003 + i)
    category = list(CATEGORIES)[rng.randrange(len(CATEGORIES))]
    brand = rng.choice(BRANDS)
    noun = rng.choice(NOUNS[category])
    adjective = rng.choice(ADJECTIVES)
    name = f"{brand} {adjective} {noun}"
    sentences = []
    for _ in range(rng.randint(2, 4)):
        words = rng.sample(WORDS, rng.randint(6, 12))
        sentences.append(" ".join(words).capitalize() + ".")
    description = f"A {adjective} {noun} from {brand}. " + " ".join(sentences)
    specs = {k: rng.choice(v) for k, v in CATEGORIES[category].items() if rng.random() < 0.85}
    doc: dict[str, Any] = {
        "id": f"p{i:07d}",
        "name": name,
        "description": description,
        "brand": brand,
        "category": category,
        "tags": sorted(rng.sample(TAGS, rng.randint(0, 3))),
        "price": round(rng.lognormvariate(3.5, 1.0), 2),
        "rating": round(rng.uniform(1, 5), 1),
        "stock": rng.randint(0, 500),
        "created_at": (EPOCH + timedelta(seconds=rng.randrange(SPAN_SECONDS))).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if specs:
        doc["specs"] = specs
    if i % 50 in (7, 19, 33, 41):
        awkward_name, awkward_desc = AWKWARD[(i // 50 + (i % 50)) % len(AWKWARD)]
        doc["name"] = awkward_name
        doc["description"] = awkward_desc
        doc["tags"] = ["=cmd", "a,b", 'q"t']
    if i >= total - max(1, total // 20):
        doc["clearance"] = rng.random() < 0.5
    return doc


def generate(total: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    for i in range(total):
        yield product(i, total, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m escli.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mapping", action="store_true", help="print the index mapping instead")
    args = parser.parse_args(argv)
    out = sys.stdout.buffer
    if args.mapping:
        # _meta lets `make sample-data` see that the index already holds exactly this set.
        spec = {**MAPPING, "mappings": {**MAPPING["mappings"], "_meta": {"escli_sample": f"{args.docs}:{args.seed}"}}}
        out.write(orjson.dumps(spec, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        return 0
    try:
        for doc in generate(args.docs, args.seed):
            out.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
        out.flush()
    except BrokenPipeError:
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
