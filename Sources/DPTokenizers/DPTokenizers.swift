// tokenizer.json pipelines: normalizer, pre-tokenizer, model, post-processor.
