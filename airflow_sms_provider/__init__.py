"""Apache Airflow provider for SMS marketing: Mobizon, BSG One-API and Ogangi, plus a local sandbox."""

__version__ = "0.1.0"
