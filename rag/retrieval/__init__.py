"""The retrieval side: the Retriever over an index folder, score fusion, reranking and the LangChain adapter."""
