"""The scan benchmark's plain-Python baseline: json.load each trail file and select the records
the rules report (IAM mutations and the tampering calls), the way a short audit script would.
Prints the number found. Run by bench/bench.py under ``taskset -c 0``."""

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", required=True, help="JSON list of IAM read-name prefixes")
    parser.add_argument("--tamper", required=True, help="JSON list of [eventSource, eventName]")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    reads = tuple(json.loads(args.reads))
    tamper = {tuple(pair) for pair in json.loads(args.tamper)}
    found = 0
    for path in args.files:
        with open(path, encoding="utf-8") as file:
            for record in json.load(file)["Records"]:
                source, name = record.get("eventSource"), record.get("eventName") or ""
                if (source == "iam.amazonaws.com" and not name.startswith(reads)) or (
                    (source, name) in tamper
                ):
                    found += 1
    print(found)


if __name__ == "__main__":
    main()
