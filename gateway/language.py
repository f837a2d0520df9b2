"""Answers in Chinese for clients that ask (``Accept-Language: zh-CN``).

English is the default, and what the problem ``code`` and status values stay in either
language: programs compare those, people read the ``title`` and ``status_label``. The
titles and labels use the seeds' terms (电子证明, 统一认证码, 质押).

Negotiation follows RFC 9110 §12.5.4 with basic filtering (RFC 4647 §3.3.1): the range
with the highest quality that matches ``zh`` or ``en`` decides, ``*`` counts for
English, a tie goes to English, q=0 excludes. Anything unparsable is English.
"""

from __future__ import annotations

import functools

from aiohttp import web

from sealgate.verify.registry import Status

#: The title of every problem code (gateway/openapi_schemas.py PROBLEM_CODES; a test
#: keeps the two together).
PROBLEM_TITLES_ZH = {
    "invalid-request": "请求无效",
    "incomplete-body": "请求正文不完整",
    "bad-request": "请求格式错误",
    "duplicate-authorization": "请求含有多个 Authorization 请求头",
    "unauthenticated": "未提供有效的访问令牌",
    "forbidden-role": "该客户端的角色无权进行此操作",
    "purpose-not-granted": "该客户端未获授权用于此用途",
    "seal-not-granted": "该客户端未获授权使用此印章",
    "not-your-office": "该电子证明由其他单位出具",
    "unknown-code": "没有电子证明使用此统一认证码",
    "not-found": "路径不存在",
    "no-crl": "城市根CA尚未签发证书吊销列表",
    "method-not-allowed": "该路径不支持此请求方法",
    "body-timeout": "请求正文未按时送达",
    "status-terminal": "该电子证明的状态已终止，不能再变更",
    "transition-not-allowed": "该电子证明的当前状态不允许此变更",
    "not-yet-valid": "该电子证明尚未生效",
    "body-too-large": "请求正文过大",
    "expectation-failed": "服务器不支持该 Expect 请求头",
    "idempotency-key-reused": "幂等键已用于其他请求",
    "invalid-supersession": "更正所指向的电子证明无效",
    "invalid-proof": "电子证明的签章或内容无效",
    "validity-ended": "电子证明的有效期已结束",
    "too-many-failed-lookups": "查询失败次数过多，请稍后再试",
    "hsm-unavailable": "签章设备暂不可用，请稍后再试",
    "seal-key-unavailable": "印章密钥暂不可用，请稍后再试",
    "seal-certificate-not-valid": "印章证书当前无效",
    "seal-revoked": "印章证书已被吊销，须由运维人员更换印章密钥",
    "tsa-unavailable": "时间戳服务暂不可用，请稍后再试",
    "registry-unavailable": "证明登记库暂不可用，请稍后再试",
    "registry-corrupted": "证明登记库数据已损坏，需由运维人员恢复",
    "directory-unavailable": "客户端与印章目录暂不可用，请稍后再试",
    "audit-unavailable": "审计日志暂不可写入，请稍后再试",
    "not-showable": "该电子证明当前状态不能出示二维码",
    "invalid-qr": "二维码无效",
    "qr-expired": "二维码已过期，请刷新后重新出示",
    "unknown-status-list": "状态列表不存在",
    "too-many-checks": "查询过于频繁",
    "consent-required": "需要持证人的授权",
    "consent-invalid": "该授权不允许此操作",
    "unknown-consent": "持证人没有此项有效授权",
    "unknown-subscription": "本客户端没有此项订阅",
    "holder-not-asserted": "未能确认持证人身份",
    "content-not-granted": "该用途所属事项无权读取此类电子证明的内容",
    "trust-document-unpublished": "信任文档尚未由根证书签发发布，需由运维人员发布",
    "seal-suspended": "该印章已暂停使用",
    "no-office": "该客户端不属于目录中登记的单位",
    "request-not-found": "本单位没有此协查请求",
    "request-closed": "该请求已答复或已退回",
    "step-not-allowed": "该请求当前不允许此操作",
    "unknown-office": "被请求单位未在目录中登记",
    "unknown-matter": "该事项不在城市事项表中",
    "seal-kind-mismatch": "印章种类与请求方式不符",
    "holder-mismatch": "答复所涉持证人与请求不符",
    "endorsement-not-typed": "背书由平台根据协查请求填写，不得自行填写",
    "calendar-unusable": "工作日历无法计算该期限",
    "unknown-client": "没有此客户端",
    "unknown-seal": "没有此印章",
    "invalid-provisioning": "不允许此项配置变更",
    "internal-error": "内部错误",
    "http-error": "请求错误",
}

STATUS_LABELS_ZH = {
    Status.VALID: "有效",
    Status.PLEDGED: "已质押",
    Status.CHANGED: "已变更",
    Status.NOT_YET_VALID: "尚未生效",
    Status.EXPIRED: "已过期",
    Status.REVOKED: "已撤销",
    Status.CANCELLED: "已注销",
    Status.ABOLISHED: "已废止",
}


def asks_chinese(request: web.BaseRequest) -> bool:
    """Whether the request's ``Accept-Language`` prefers Chinese to English."""
    return wants_chinese(request.headers.get("Accept-Language"))


def wants_chinese(accept_language: str | None) -> bool:
    """Whether an ``Accept-Language`` value prefers Chinese to English."""
    if not accept_language:
        return False
    return _prefers_chinese(accept_language[:512])


@functools.lru_cache(maxsize=256)
def _prefers_chinese(value: str) -> bool:
    # Cached: clients send the same few values; bounded, so odd ones cannot grow it.
    best_zh = best_en = 0.0
    for part in value.split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, number = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    return False
                if not 0.0 <= quality <= 1.0:
                    return False
        if tag == "zh" or tag.startswith("zh-"):
            best_zh = max(best_zh, quality)
        elif tag == "en" or tag.startswith("en-") or tag == "*":
            best_en = max(best_en, quality)
    return best_zh > best_en
