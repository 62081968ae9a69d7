"""What every stage does before its work: quiet libraries and seeding, without heavy imports.

Each stage is its own process, so an import that a stage does not need costs the first run its
seconds once per stage (results/sample/HISTORY.md)."""

from __future__ import annotations

import json
import subprocess
import sys


def _python(code: str, env_extra: dict[str, str] | None = None) -> dict:
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")
    }
    env.update(env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_quiet_libraries_does_not_import_transformers_and_still_quiets_it():
    got = _python(
        "import json, sys\n"
        "from finslm.stage import quiet_libraries\n"
        "quiet_libraries()\n"
        "before = 'transformers' in sys.modules\n"
        "from transformers.utils import logging as hf\n"
        "print(json.dumps({'imported_by_quiet': before, 'bars': hf.is_progress_bar_enabled(),\n"
        "                  'level': hf.get_verbosity()}))\n"
    )
    assert got == {"imported_by_quiet": False, "bars": False, "level": 30}  # 30 = WARNING


def test_quiet_libraries_leaves_a_users_own_verbosity():
    got = _python(
        "import json\n"
        "from finslm.stage import quiet_libraries\n"
        "quiet_libraries()\n"
        "from transformers.utils import logging as hf\n"
        "print(json.dumps({'level': hf.get_verbosity()}))\n",
        {"TRANSFORMERS_VERBOSITY": "error"},
    )
    assert got == {"level": 40}


def test_quiet_libraries_after_transformers_is_imported():
    got = _python(
        "import json\n"
        "from transformers.utils import logging as hf\n"
        "from finslm.stage import quiet_libraries\n"
        "quiet_libraries()\n"
        "print(json.dumps({'bars': hf.is_progress_bar_enabled(), 'level': hf.get_verbosity()}))\n"
    )
    assert got == {"bars": False, "level": 30}


def test_set_determinism_seeds_as_transformers_set_seed_does_without_importing_peft():
    got = _python(
        "import json, random, sys\n"
        "import numpy as np, torch\n"
        "from finslm.train.determinism import set_determinism\n"
        "set_determinism(7)\n"
        "ours = [random.random(), float(np.random.rand()), float(torch.rand(1))]\n"
        "peft = 'peft' in sys.modules or 'transformers.trainer_utils' in sys.modules\n"
        "from transformers import set_seed\n"
        "set_seed(7)\n"
        "theirs = [random.random(), float(np.random.rand()), float(torch.rand(1))]\n"
        "print(json.dumps({'same': ours == theirs, 'peft': peft}))\n"
    )
    assert got == {"same": True, "peft": False}
