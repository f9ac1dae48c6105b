"""Web search: providers (Tavily, Brave, an offline local corpus) behind one small seam."""
