"""The scan benchmark's plain-Python baseline: json.load each trail file and select the records
the rules report (IAM mutations and every rule of bench/catalogue.json), the way a short audit
script would. Prints the number found. Run by bench/bench.py under ``taskset -c 0``."""

import argparse
import json

MISSING = object()


def field(record, path):
    """The value at a dotted path, or MISSING."""
    node = record
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def holds(record, test):
    path, kind, wanted = test
    value = field(record, path)
    if kind == "is":
        return isinstance(value, str) and value == wanted
    if kind == "is-not":
        return isinstance(value, str) and value != wanted
    if kind == "false":
        return value is False
    return value is MISSING


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalogue", required=True, help="bench/catalogue.json")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    with open(args.catalogue, encoding="utf-8") as file:
        catalogue = json.load(file)
    iam_source = catalogue["iam"]["eventSource"]
    reads = tuple(catalogue["iam"]["readPrefixes"])
    rules = [rule["when"] for rule in catalogue["rules"]]
    found = 0
    for path in args.files:
        with open(path, encoding="utf-8") as file:
            for record in json.load(file)["Records"]:
                source, name = record.get("eventSource"), record.get("eventName") or ""
                if (source == iam_source and not name.startswith(reads)) or any(
                    all(holds(record, test) for test in rule) for rule in rules
                ):
                    found += 1
    print(found)


if __name__ == "__main__":
    main()
