//! Model architectures parsed from HuggingFace `config.json` files.
