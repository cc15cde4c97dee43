"""OpenAI's Responses API with the file_search tool.

routes.py    POST /v1/responses, GET and DELETE /v1/responses/{id}
request.py   reading a request: what is supported, a 400 naming the field otherwise
output.py    the search and the answer as OpenAI's output items
stream.py    the same as OpenAI's server-sent events, in order
text.py      [n] markers turned into file_citation annotations at their offsets
schema.py    response bodies
"""
