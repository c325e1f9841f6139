"""The baseline: what a hand-written loader does, one requests.post after another.

Reads the same Singer file as the target and sends each record with createOrUpdate.
Usage: python bench/naive_load.py API_URL SINGER_FILE
"""

from __future__ import annotations

import json
import sys

import requests

CREDENTIALS = {
    "v": "1.0",
    "api_key": "demo-api-key",
    "login_name": "apiuser",
    "login_password": "apipass",
    "method": "createOrUpdate",
}


def main() -> None:
    url, path = sys.argv[1], sys.argv[2]
    session = requests.Session()
    with open(path) as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] != "RECORD":
                continue
            record = message["record"]
            params = {
                "primary_email": record["email"],
                "name.first": record["first_name"],
                "name.last": record["last_name"],
                "primary_address.city": record["city"],
            }
            session.post(url, data={**CREDENTIALS, **params}, timeout=30).raise_for_status()


if __name__ == "__main__":
    main()
