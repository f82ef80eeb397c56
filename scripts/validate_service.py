"""Validation study of starmesh's service model against published Starlink measurements."""

import json
import sys

from starmesh.service.validate import run_validation

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print(json.dumps(run_validation(n_steps=n), indent=1))
