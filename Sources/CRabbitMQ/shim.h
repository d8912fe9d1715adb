#pragma once
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <amqp_framing.h>
#include <sys/eventfd.h>
#include <poll.h>

// amqp_login is variadic, which Swift does not import: PLAIN login with a user and password.
static inline amqp_rpc_reply_t fnhost_amqp_login_plain(amqp_connection_state_t state, const char *vhost, int frame_max,
                                                       int heartbeat, const char *user, const char *password) {
    return amqp_login(state, vhost, 0, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// Method numbers are cast macros, which Swift does not import.
static inline amqp_method_number_t fnhost_amqp_basic_deliver_method(void) { return AMQP_BASIC_DELIVER_METHOD; }
static inline amqp_method_number_t fnhost_amqp_basic_ack_method(void) { return AMQP_BASIC_ACK_METHOD; }
static inline amqp_method_number_t fnhost_amqp_basic_nack_method(void) { return AMQP_BASIC_NACK_METHOD; }
static inline amqp_method_number_t fnhost_amqp_basic_return_method(void) { return AMQP_BASIC_RETURN_METHOD; }
static inline amqp_method_number_t fnhost_amqp_basic_cancel_method(void) { return AMQP_BASIC_CANCEL_METHOD; }
static inline amqp_method_number_t fnhost_amqp_channel_close_method(void) { return AMQP_CHANNEL_CLOSE_METHOD; }
static inline amqp_method_number_t fnhost_amqp_channel_close_ok_method(void) { return AMQP_CHANNEL_CLOSE_OK_METHOD; }
static inline amqp_method_number_t fnhost_amqp_connection_close_method(void) { return AMQP_CONNECTION_CLOSE_METHOD; }
static inline amqp_method_number_t fnhost_amqp_connection_close_ok_method(void) { return AMQP_CONNECTION_CLOSE_OK_METHOD; }

// Property flags (shift macros).
static inline amqp_flags_t fnhost_amqp_flag_content_type(void) { return AMQP_BASIC_CONTENT_TYPE_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_content_encoding(void) { return AMQP_BASIC_CONTENT_ENCODING_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_headers(void) { return AMQP_BASIC_HEADERS_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_delivery_mode(void) { return AMQP_BASIC_DELIVERY_MODE_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_priority(void) { return AMQP_BASIC_PRIORITY_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_correlation_id(void) { return AMQP_BASIC_CORRELATION_ID_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_reply_to(void) { return AMQP_BASIC_REPLY_TO_FLAG; }
static inline amqp_flags_t fnhost_amqp_flag_expiration(void) { return AMQP_BASIC_EXPIRATION_FLAG; }

static inline short fnhost_pollin(void) { return POLLIN; }

// confirm.select (publisher confirms); rabbitmq-c 0.11 has no convenience call for it.
static inline amqp_rpc_reply_t fnhost_amqp_confirm_select(amqp_connection_state_t state, amqp_channel_t channel) {
    amqp_confirm_select_t request;
    request.nowait = 0;
    amqp_method_number_t replies[2] = {AMQP_CONFIRM_SELECT_OK_METHOD, 0};
    return amqp_simple_rpc(state, channel, AMQP_CONFIRM_SELECT_METHOD, replies, &request);
}
