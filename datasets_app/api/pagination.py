"""Page/perPage lists answering `{"<things>": [...], "pagination": {...}}`."""

from dataclasses import dataclass

from rest_framework import serializers

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


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return self.page * self.per_page

    def envelope(self, key: str, rows: list, total: int) -> dict:
        return {
            key: rows,
            "pagination": {
                "total": total,
                "page": self.page,
                "perPage": self.per_page,
                "hasMore": self.offset + len(rows) < total,
            },
        }


def page_from_query(query_params, *, default_per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Read page/perPage from the query string; a bad value is a 400 naming the parameter."""
    params = PageQuerySerializer(data={k: query_params[k] for k in ("page", "perPage") if k in query_params})
    params.is_valid(raise_exception=True)
    per_page = params.validated_data["perPage"] if "perPage" in query_params else default_per_page
    return Page(page=params.validated_data["page"], per_page=per_page)


def paginate(queryset, page: Page, *, key: str, serializer_class, total: int | None = None, context=None) -> dict:
    """Serialize one page of the queryset; `total` may be given when it is known without counting."""
    if total is None:
        total = queryset.count()
    rows = list(queryset[page.offset : page.offset + page.per_page]) if page.offset < total else []
    return page.envelope(key, serializer_class(rows, many=True, context=context or {}).data, total)


def envelope_serializer(key: str, item_serializer) -> type[serializers.Serializer]:
    """The schema of a paginated answer, for the OpenAPI document."""
    name = f"Paginated{item_serializer.__name__.removesuffix('Serializer')}List"
    return type(
        name,
        (serializers.Serializer,),
        {key: item_serializer(many=True), "pagination": PaginationSerializer()},
    )
