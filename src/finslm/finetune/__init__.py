"""Targeted fine-tuning of a trained model on its hard training examples, with an honest control.

Two stages (``stages/finetune.py``):

1. ``mine``: hard-example mining on the train split only. ``k`` fold models fine-tuned briefly
   from the *pretrained* checkpoint give each training sentence an out-of-fold prediction, and
   their training dynamics give dataset-cartography confidence and variability (Swayamdipta et
   al. 2020). Flags: misclassified, low-confidence, ambiguous, hard-to-learn.
2. ``finetune``: continued training of ``models/<m>`` in three phases (focus on hard samples
   mixed with easy ones; whole train split with capped per-sample weights and the explain
   analysis's class focus; consolidation at a lower rate), early stopping on validation
   macro-F1, against a control with the same budget and schedule and no targeting, for several
   seeds; base, control and targeted are compared on test for the report only.

Modules: ``loop`` (the training loop), ``mining``, ``selection`` (hard set, focus pool, weights,
the analysis targets), ``phases`` (plan, learning rates, example streams of both arms),
``augment`` (optional synonym / token-dropout copies of hard samples), ``guard`` (no validation
or test sentence in any training data), ``ablation`` (one seed's two arms, the summary),
``pipeline`` (the stage cores and their files).
"""
