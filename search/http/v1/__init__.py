"""OpenAI's wire protocol under `/v1`, over the same indexes as the rest of the API.

embeddings.py     /v1/embeddings and /v1/models from the local model; OpenAIError, the error body
file_store.py     the content-addressed store behind /v1/files (its bytes code is the uploads')
files.py          /v1/files
vector_stores/    /v1/vector_stores: a vector store is an index, a vector-store file a document
responses/        /v1/responses with the file_search tool, streamed or not
"""
