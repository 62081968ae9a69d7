"""Default vs tuned TF-IDF on the PhraseBank 50Agree test split (read once, after selection)."""
import json, time, sys
import numpy as np
from threadpoolctl import threadpool_limits
from finslm.config import load_params, model_config
from finslm.data import read_split
from finslm.evaluation import classification_metrics
from finslm.models import build_tfidf

params = load_params("params.yaml")
best = json.load(open(sys.argv[1]))["best"]["params"]
raw = dict(yaml_models := __import__("yaml").safe_load(open("params.yaml"))["models"]["tfidf"])
cfgs = {"default": model_config("tfidf", raw), "tuned": model_config("tfidf", {**raw, **best})}
tr, va, te = (read_split(f"data/prepared/{s}.parquet") for s in ("train", "val", "test"))
out, preds = {}, {}
with threadpool_limits(1):
    for name, cfg in cfgs.items():
        t = time.perf_counter()
        p = build_tfidf(cfg).fit(tr.text.tolist(), tr.label.tolist())
        fit_s = time.perf_counter() - t
        preds[name] = {s: np.array(p.predict(df.text.tolist())) for s, df in (("val", va), ("test", te))}
        out[name] = {s: {k: round(v, 4) for k, v in classification_metrics(df.label.tolist(), list(preds[name][s])).items() if k in ("accuracy", "macro_f1")} for s, df in (("val", va), ("test", te))}
        out[name]["fit_seconds"] = round(fit_s, 1)
# paired bootstrap over test sentences: tuned - default
from sklearn.metrics import f1_score, accuracy_score
rng = np.random.default_rng(0)
y = te.label.to_numpy(); n = len(y); d_f1, d_acc = [], []
for _ in range(2000):
    i = rng.integers(0, n, n)
    d_f1.append(f1_score(y[i], preds["tuned"]["test"][i], average="macro") - f1_score(y[i], preds["default"]["test"][i], average="macro"))
    d_acc.append(accuracy_score(y[i], preds["tuned"]["test"][i]) - accuracy_score(y[i], preds["default"]["test"][i]))
out["test_delta_bootstrap"] = {"macro_f1": [round(float(np.percentile(d_f1, q)), 4) for q in (2.5, 50, 97.5)],
                               "accuracy": [round(float(np.percentile(d_acc, q)), 4) for q in (2.5, 50, 97.5)], "resamples": 2000}
print(json.dumps(out, indent=1))
json.dump(out, open(sys.argv[2], "w"), indent=1)
