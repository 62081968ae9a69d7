"""Everything that trains a transformer classifier.

- :mod:`.recipe` — ``fit_transformer``, the one entry for ``train@<m>`` and ``finslm ablate``:
  task-adaptive pre-training (:mod:`.tapt`) if on, then one model (:mod:`.transformer`) or a
  weight-averaged soup of several seeds (:mod:`.soup`);
- :mod:`.transformer` — fine-tuning with transformers' ``Trainer`` (early stopping on
  validation macro-F1, best epoch restored) and the recipe's optional loss/optimiser levers;
- :mod:`.arguments` — the one ``TrainingArguments`` factory every Trainer loop uses;
- :mod:`.metrics` — the one metrics function every loop reports (accuracy, macro-F1);
- :mod:`.determinism` — seeds and thread counts (same seed + threads -> same weights on CPU);
- :mod:`.distributed` — torchrun (DDP) helpers;
- :mod:`.heads` — the mean-pooling BERT head; :mod:`.losses`, :mod:`.optim` — loss terms and
  layer-wise learning rates; :mod:`.contrastive` — the SetFit-style encoder stage;
- :mod:`.distill` — knowledge distillation from a teacher's logits (the prune stage's recovery);
- :mod:`.tfidf` — the TF-IDF + logistic-regression baseline.
"""
