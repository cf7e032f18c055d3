package sseredis

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The broker's Lua scripts, one file each under lua/: every file says what
// its script does, its KEYS and ARGV and its reply. core.lua holds the
// helpers every script shares and is prepended to each (see there for the
// epoch key and the stream ids); common.lua those all but the publish
// script share (each helper costs a closure per call).
var (
	//go:embed lua/core.lua
	luaCore string
	//go:embed lua/common.lua
	luaCommonRest string
	luaCommon     = luaCore + luaCommonRest
	//go:embed lua/publish.lua
	luaPublish string
	//go:embed lua/head.lua
	luaHead string
	//go:embed lua/fetch.lua
	luaFetch string
	//go:embed lua/bump.lua
	luaBump string
	//go:embed lua/replay.lua
	luaReplay string
	//go:embed lua/page.lua
	luaPage string
	//go:embed lua/snapshot.lua
	luaSnapshot string
	//go:embed lua/control.lua
	luaControl string
)

var (
	publishScript  = redis.NewScript(luaCore + luaPublish)
	headScript     = redis.NewScript(luaCommon + luaHead)
	fetchScript    = redis.NewScript(luaCommon + luaFetch)
	bumpScript     = redis.NewScript(luaCommon + luaBump)
	replayScript   = redis.NewScript(luaCommon + luaReplay)
	pageScript     = redis.NewScript(luaCommon + luaPage)
	snapshotScript = redis.NewScript(luaCommon + luaSnapshot)
	controlScript  = redis.NewScript(luaCommon + luaControl)
)

var scripts = []*redis.Script{publishScript, headScript, fetchScript, bumpScript, replayScript, pageScript, snapshotScript, controlScript}
