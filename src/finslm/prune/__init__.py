"""Structured pruning: remove whole encoder layers and FFN neurons, then recover by distillation.

The pruned model is a stock ``BertForSequenceClassification`` (or the repo's mean-pooling head)
with a smaller ``num_hidden_layers`` / ``intermediate_size`` in its config, so it reloads with
``from_pretrained`` and exports, quantises and benchmarks like every other model. Every
decision is made on the train and validation splits; the test split is never read here.
"""
