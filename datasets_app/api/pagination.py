"""The contract's lists: `page` (0-based) and `perPage` in the query string,
`{"<things>": [...], "pagination": {"total", "page", "perPage", "hasMore"}}`
in the answer (docs/api.md, Conventions)."""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 1000
# Keeps OFFSET within a 64-bit integer on every database.
MAX_PAGE = 1_000_000_000


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_PAGE, help_text="0-based page number"
    )
    perPage = serializers.IntegerField(
        required=False, default=DEFAULT_PER_PAGE, min_value=1, max_value=MAX_PER_PAGE, help_text="Page size"
    )


class PaginationSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    perPage = serializers.IntegerField()
    hasMore = serializers.BooleanField()


class PagePagination(BasePagination):
    """Pages of a list view. The view names the list (`list_key`), and may know
    its total without counting (`known_total()`, e.g. a dataset's item count).

    A bad `page` or `perPage` is a 400 naming the parameter.
    """

    def __init__(self, *, default_per_page: int = DEFAULT_PER_PAGE) -> None:
        self.default_per_page = default_per_page
        self.key = "results"
        self.page = 0
        self.per_page = default_per_page
        self.total = 0

    def read_query(self, request: Request) -> None:
        """Take page and perPage from the query string."""
        query = request.query_params
        params = PageQuerySerializer(data={k: query[k] for k in ("page", "perPage") if k in query})
        params.is_valid(raise_exception=True)
        self.page = params.validated_data["page"]
        self.per_page = params.validated_data["perPage"] if "perPage" in query else self.default_per_page

    @property
    def offset(self) -> int:
        return self.page * self.per_page

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.read_query(request)
        self.key = getattr(view, "list_key", self.key)
        known_total = getattr(view, "known_total", lambda: None)()
        if known_total is not None:
            self.total = known_total
        else:
            self.total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        return list(queryset[self.offset : self.offset + self.per_page]) if self.offset < self.total else []

    def pagination(self, shown: int) -> dict[str, Any]:
        """The `pagination` object for a page holding `shown` entries of `self.total`."""
        return {
            "total": self.total,
            "page": self.page,
            "perPage": self.per_page,
            "hasMore": self.offset + shown < self.total,
        }

    def get_paginated_response(self, data: Any) -> Response:
        return Response({self.key: data, "pagination": self.pagination(len(data))})


def envelope_serializer(key: str, item_serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a paginated answer, for the OpenAPI document."""
    name = f"Paginated{item_serializer.__name__.removesuffix('Serializer')}List"
    return type(
        name,
        (serializers.Serializer,),
        {key: item_serializer(many=True), "pagination": PaginationSerializer()},
    )
