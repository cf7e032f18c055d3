//go:build !linux

package sse

// poller is empty where there is no epoll: Config.Poll gives every stream
// a reader goroutine, as without it.
type poller struct{}

// pollAdd reports false: the stream gets a reader.
func (h *Hub) pollAdd(*stream) bool { return false }

// pollRemove does nothing: no stream is watched.
func (h *Hub) pollRemove(*stream) {}
