"""The Streamlit dashboard over run folders: data loading (`tables`, `catalog`, `queries`), charts, pages."""
