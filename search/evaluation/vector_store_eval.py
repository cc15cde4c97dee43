"""A BEIR collection scored through OpenAI's vector-store search, with the official `openai` client.

    semsearch eval ../shared/datasets/scifact --index ./scifact     # builds the index (and scores it)
    semsearch serve --index ./scifact &
    python -m search.evaluation.vector_store_eval ../shared/datasets/scifact --base-url http://127.0.0.1:8000/v1

Each judged query goes to `POST /v1/vector_stores/{id}/search` as any OpenAI client would send it; results
are passages, so documents are ranked by their best passage (a result's `filename` is the document's id,
as `semsearch eval` names the collection's documents). The same command measures any server that speaks
the API, OpenAI's own with a vector store made from the corpus included. Needs the `openai` package.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .beir import EvalReport, load_beir, run_beir


def measure(dataset_dir: Path, base_url: str, api_key: str, store: str, max_num_results: int) -> EvalReport:
    """nDCG@10, recall@100 and MRR@10 of the store's search over the collection's judged queries."""
    from openai import OpenAI

    dataset = load_beir(dataset_dir)
    with OpenAI(base_url=base_url, api_key=api_key) as client:

        def rank(text: str) -> list[tuple[str, float]]:
            page = client.vector_stores.search(vector_store_id=store, query=text, max_num_results=max_num_results)
            # The order is the ranking; the scores (0 to 1) may tie, which trec_eval's rule would break by id.
            return [(result.filename, float(-rank)) for rank, result in enumerate(page.data)]

        return run_beir(dataset, rank)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="a BEIR-layout folder")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY") or "none")
    parser.add_argument("--vector-store", default="default", help="the vector store holding the collection")
    parser.add_argument("--max-num-results", type=int, default=50, help="passages a query asks for (1 to 50)")
    args = parser.parse_args()
    report = measure(args.dataset, args.base_url, args.api_key, args.vector_store, args.max_num_results)
    print(json.dumps({"max_num_results": args.max_num_results, **report.to_json()}, indent=2))


if __name__ == "__main__":
    main()
