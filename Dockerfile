# The Refund Desk image: one image, three roles (`refund-desk migrate`, `refund-desk worker`,
# `refund-desk serve`); docker-compose.yml runs each as its own service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build from a throwaway copy of the sources; the installed package is what runs.
WORKDIR /src
COPY pyproject.toml README.md worker.py ./
COPY policy ./policy
COPY ledger ./ledger
COPY activities ./activities
COPY workflows ./workflows
COPY starter ./starter
COPY dispatch ./dispatch
RUN pip install --no-cache-dir . \
    && rm -rf /src

# Never root at run time. The home directory is the working directory, so the fallbacks that write
# `.data/` (only used when DATABASE_URL, REFUND_DESK_VAULT_KEYS, REFUND_DESK_PAYLOAD_KEYS or REFUND_DESK_JWT_SECRET
# is unset) can.
RUN useradd --create-home --uid 10001 --user-group refunddesk
USER refunddesk
WORKDIR /home/refunddesk

# 8000: `refund-desk serve`; 9464: the worker's metrics where docker-compose.yml sets
# REFUND_DESK_WORKER_METRICS_ADDRESS.
EXPOSE 8000 9464
ENTRYPOINT ["refund-desk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
