# The two consumer programs, linked the way an application would: the UDP
# handle alone, and QUIC (which brings the UDP handle with it).
add_executable(consumer-udp ${CMAKE_CURRENT_LIST_DIR}/consumer.c)
target_link_libraries(consumer-udp PRIVATE uvq::uvq)
add_executable(consumer-quic ${CMAKE_CURRENT_LIST_DIR}/consumer.c)
target_compile_definitions(consumer-quic PRIVATE UVQ_CONSUMER_QUIC)
target_link_libraries(consumer-quic PRIVATE uvq::quic)
