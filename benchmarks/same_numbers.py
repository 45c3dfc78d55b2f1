"""Train one stored run again with this checkout's code and compare it with the stored result, bit for bit.

    REPRO_DATA=../shared/data/tiny-imagenet-200 python benchmarks/same_numbers.py STORE/runs/KEY/result.json NEW_STORE

The check behind "the landed code gives the committed study's numbers": same key, same curve, losses, top-1
and weights checksum. The profile whose recipe trained the run is taken from its spec (`--profile`, default cpu).
"""
import argparse
import json
import os
import time

from repro.execute import execute
from repro.profiles import get_profile
from repro.runs import RunSpec
from repro.store import Store

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("result", help="a stored run's result.json")
parser.add_argument("store", help="an empty folder for the new run's store")
parser.add_argument("--profile", default="cpu")
args = parser.parse_args()

stored = json.load(open(args.result))["metrics"]
spec = RunSpec.from_dict(stored["spec"])
print("key here", spec.key, "stored", stored["key"])
started = time.time()
execute([spec], get_profile(args.profile), Store(args.store), data_root=os.environ.get("REPRO_DATA"), workers=1,
        progress=False)
new = json.load(open(os.path.join(args.store, "runs", spec.key, "result.json")))["metrics"]
for name in ("curve", "losses", "top1", "final_top1", "weights_sha256"):
    print(name, "same" if new[name] == stored[name] else f"DIFFERENT: {new[name]} here, {stored[name]} stored")
print("seconds", round(time.time() - started, 1))
