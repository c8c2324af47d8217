#include "json.h"
#include "test.h"

#include <math.h>

TEST(json_nested_document_with_commas_in_place)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 0);
    tlsc_json_object_begin(&j, NULL);
    tlsc_json_string(&j, "a", "x");
    tlsc_json_array_begin(&j, "list");
    tlsc_json_int(&j, NULL, -1);
    tlsc_json_uint(&j, NULL, UINT64_MAX);
    tlsc_json_object_begin(&j, NULL);
    tlsc_json_object_end(&j);
    tlsc_json_array_begin(&j, NULL);
    tlsc_json_array_end(&j);
    tlsc_json_array_end(&j);
    tlsc_json_bool(&j, "t", 1);
    tlsc_json_bool(&j, "f", 0);
    tlsc_json_null(&j, "n");
    tlsc_json_string(&j, "s", NULL);
    tlsc_json_object_end(&j);
    ASSERT_STREQ(tlsc_json_result(&j),
                 "{\"a\":\"x\",\"list\":[-1,18446744073709551615,{},[]],\"t\":true,\"f\":false,\"n\":null,\"s\":null}");
    tlsc_json_free(&j);
}

TEST(json_strings_are_escaped)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 0);
    tlsc_json_array_begin(&j, NULL);
    tlsc_json_string(&j, NULL, "q\"b\\n\nr\rt\t\x01\x1f\x7f caf\xc3\xa9");
    tlsc_json_array_end(&j);
    ASSERT_STREQ(tlsc_json_result(&j), "[\"q\\\"b\\\\n\\nr\\rt\\t\\u0001\\u001f\\u007f caf\xc3\xa9\"]");
    tlsc_json_free(&j);

    tlsc_json_init(&j, 0);
    tlsc_json_object_begin(&j, NULL);
    tlsc_json_int(&j, "k\"ey", 1);
    tlsc_json_object_end(&j);
    ASSERT_STREQ(tlsc_json_result(&j), "{\"k\\\"ey\":1}");
    tlsc_json_free(&j);
}

TEST(json_doubles_keep_the_asked_digits_and_nan_is_null)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 0);
    tlsc_json_array_begin(&j, NULL);
    tlsc_json_double(&j, NULL, 1.5, 3);
    tlsc_json_double(&j, NULL, 2.0 / 3.0, 2);
    tlsc_json_double(&j, NULL, NAN, 3);
    tlsc_json_double(&j, NULL, INFINITY, 3);
    tlsc_json_double(&j, NULL, 12345.678, 0);
    tlsc_json_array_end(&j);
    ASSERT_STREQ(tlsc_json_result(&j), "[1.500,0.67,null,null,12346]");
    tlsc_json_free(&j);
}

TEST(json_pretty_output_is_indented)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 1);
    tlsc_json_object_begin(&j, NULL);
    tlsc_json_int(&j, "a", 1);
    tlsc_json_array_begin(&j, "b");
    tlsc_json_int(&j, NULL, 2);
    tlsc_json_array_end(&j);
    tlsc_json_object_begin(&j, "c");
    tlsc_json_object_end(&j);
    tlsc_json_object_end(&j);
    ASSERT_STREQ(tlsc_json_result(&j), "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ],\n  \"c\": {}\n}\n");
    tlsc_json_free(&j);
}

TEST(json_unbalanced_or_second_top_level_value_has_no_result)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 0);
    tlsc_json_object_begin(&j, NULL);
    ASSERT(tlsc_json_result(&j) == NULL); /* still open */
    tlsc_json_object_end(&j);
    ASSERT(tlsc_json_result(&j) != NULL);
    tlsc_json_int(&j, NULL, 1); /* a second document */
    ASSERT(tlsc_json_result(&j) == NULL);
    tlsc_json_free(&j);

    tlsc_json_init(&j, 0);
    tlsc_json_array_end(&j); /* nothing to close */
    ASSERT(tlsc_json_result(&j) == NULL);
    tlsc_json_free(&j);
}

TEST(json_depth_limit_is_enforced)
{
    tlsc_json_t j;

    tlsc_json_init(&j, 0);
    for (int i = 0; i < TLSC_JSON_MAX_DEPTH + 1; i++)
        tlsc_json_array_begin(&j, NULL);
    ASSERT(j.failed);
    tlsc_json_free(&j);
}

TEST(json_large_documents_grow_the_buffer)
{
    tlsc_json_t j;
    const char *doc;

    tlsc_json_init(&j, 0);
    tlsc_json_array_begin(&j, NULL);
    for (int i = 0; i < 100000; i++)
        tlsc_json_int(&j, NULL, i);
    tlsc_json_array_end(&j);
    doc = tlsc_json_result(&j);
    ASSERT(doc != NULL);
    ASSERT(strncmp(doc, "[0,1,2,", 7) == 0);
    ASSERT(strcmp(doc + strlen(doc) - 7, ",99999]") == 0);
    tlsc_json_free(&j);
}

int main(void)
{
    RUN(json_nested_document_with_commas_in_place);
    RUN(json_strings_are_escaped);
    RUN(json_doubles_keep_the_asked_digits_and_nan_is_null);
    RUN(json_pretty_output_is_indented);
    RUN(json_unbalanced_or_second_top_level_value_has_no_result);
    RUN(json_depth_limit_is_enforced);
    RUN(json_large_documents_grow_the_buffer);
    TEST_DONE();
}
