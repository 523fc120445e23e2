"""Checks the simulated NCP's stack answers against bellows 1.2.1's own response schemas.

Input (argv[1]): a JSON list of {"version", "frame_id", "name", "parameters" (hex)} written by
tests/it/interop.rs from `zigbee_otad::sim::stack::StackTables`. For each record the frame id
must be bellows' frame of that name in that version, and bellows' response schema must read
the parameters completely (nothing missing, nothing left over). Prints one line per problem and
exits 1 if there is any; prints the number of answers checked otherwise.
"""

import importlib
import json
import sys

import bellows.types as t


def main(path: str) -> int:
    records = json.load(open(path))
    problems = []
    tables = {}
    for record in records:
        version = record["version"]
        if version not in tables:
            tables[version] = importlib.import_module(f"bellows.ezsp.v{version}.commands").COMMANDS
        commands = tables[version]
        name = record["name"]
        if name not in commands:
            problems.append(f"v{version} {name}: bellows has no such frame")
            continue
        frame_id, _, rx_schema = commands[name]
        if frame_id != record["frame_id"]:
            problems.append(f"v{version} {name}: frame id 0x{record['frame_id']:04X}, bellows 0x{frame_id:04X}")
            continue
        data = bytes.fromhex(record["parameters"])
        try:
            if isinstance(rx_schema, dict):
                _, rest = t.deserialize_dict(data, rx_schema)
            else:
                _, rest = rx_schema.deserialize(data)
        except Exception as error:  # noqa: BLE001 - report any parse failure
            problems.append(f"v{version} {name}: bellows cannot read {data.hex()}: {error}")
            continue
        if rest:
            problems.append(f"v{version} {name}: {len(rest)} byte(s) left over: {rest.hex()}")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{len(records)} answers read by bellows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
