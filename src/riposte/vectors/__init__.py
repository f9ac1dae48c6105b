"""Vector stores: text extraction, chunking, embeddings, the index (sqlite-vec or pgvector),
attribute filters and hybrid ranking."""
