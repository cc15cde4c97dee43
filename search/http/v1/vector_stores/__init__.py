"""OpenAI's vector stores over semsearch's indexes.

routes.py        the stores: create, list, retrieve, modify, delete, search
file_routes.py   their files and file batches
attach.py        checks and queueing of files to attach; worker.py ingests them in the background
state.py         vector_store.json and vector_store_files.json in each index folder
objects.py       OpenAI's objects built from that state and the catalog; cursor pages
search.py        search_stores: one query over several stores, best first
schemas.py       request and response bodies
"""
